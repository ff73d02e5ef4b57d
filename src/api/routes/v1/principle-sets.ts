import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { createPrincipleSetsRepository } from '../../../db/principle-sets-repository.ts'
import { AppError, NotFoundError } from '../../../errors.ts'
import { IdParamsSchema, Int4, PageQuerySchema, PageSchema } from '../../../schemas/common.ts'
import {
  PrincipleSetCreateSchema,
  PrincipleSetSchema,
  PrincipleSetUpdateSchema,
} from '../../../schemas/principle-sets.ts'
import { validatePrincipleSet } from '../../../sso/principles.ts'
import { targetProject } from '../../plugins/app/project-scope.ts'

const problem = { $ref: 'Problem#' }
const tags = ['principle-sets']

/** Principle sets: a version used by a run is frozen, so editing it creates the next version. */
export const principleSetsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const sets = app.repos.principleSets

  app.post(
    '/principle-sets',
    { schema: { tags, body: PrincipleSetCreateSchema, response: { 201: PrincipleSetSchema, 400: problem } } },
    async (request, reply) => {
      const { name, description = '', principles, concision } = request.body
      validatePrincipleSet({ name, principles, concision })
      const created = await sets.create({
        name,
        description,
        principles,
        concision: concision ?? null,
        projectId: targetProject(request),
      })
      return reply.code(201).send(created)
    },
  )

  app.get(
    '/principle-sets',
    {
      schema: {
        tags,
        querystring: PageQuerySchema,
        response: { 200: PageSchema(PrincipleSetSchema), 400: problem },
      },
    },
    async (request) => sets.list(request.projectScope, request.query.limit ?? 50, request.query.cursor),
  )

  app.get(
    '/principle-sets/:id',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        querystring: Type.Object({ version: Type.Optional(Int4({ minimum: 1 })) }),
        response: { 200: PrincipleSetSchema, 404: problem },
      },
    },
    async (request) => {
      const set = await sets.findById(request.params.id, request.projectScope)
      if (!set) throw new NotFoundError('principle set', request.params.id)
      if (request.query.version === undefined) return set
      const v = await sets.findVersion(set.id, request.query.version)
      if (!v) throw new NotFoundError('principle set version', `${set.id}@${request.query.version}`)
      return {
        ...set,
        version: v.version,
        version_id: v.id,
        locked: v.locked,
        principles: v.principles,
        concision: v.concision,
      }
    },
  )

  app.patch(
    '/principle-sets/:id',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        body: PrincipleSetUpdateSchema,
        response: { 200: PrincipleSetSchema, 400: problem, 404: problem },
      },
    },
    async (request) => {
      const { id } = request.params
      const current = await sets.findById(id, request.projectScope)
      if (!current) throw new NotFoundError('principle set', id)
      const { name, description, principles, concision } = request.body
      await app.prisma.$transaction(async (tx) => {
        const txSets = createPrincipleSetsRepository(tx)
        if (name !== undefined || description !== undefined) await txSets.update(id, { name, description })
        if (principles === undefined && concision === undefined) return
        const content = {
          principles: principles ?? current.principles,
          concision: concision === undefined ? current.concision : concision,
        }
        validatePrincipleSet({
          name: name ?? current.name,
          principles: content.principles,
          concision: content.concision ?? undefined,
        })
        const edited = !current.locked && (await txSets.updateUnlockedVersion(current.version_id, content))
        if (!edited) await txSets.createVersion(id, current.version + 1, content)
        await txSets.update(id, {})
      })
      return (await sets.findById(id))!
    },
  )

  app.delete(
    '/principle-sets/:id',
    { schema: { tags, params: IdParamsSchema, response: { 204: Type.Null(), 404: problem, 409: problem } } },
    async (request, reply) => {
      const { id } = request.params
      if (!(await sets.findById(id, request.projectScope))) throw new NotFoundError('principle set', id)
      await app.prisma.$transaction(async (tx) => {
        const txSets = createPrincipleSetsRepository(tx)
        // Lock the set's versions so a run cannot start using one while it is being deleted.
        await tx.$executeRaw`SELECT 1 FROM principle_set_versions WHERE set_id = ${id}::uuid FOR UPDATE`
        const used = await txSets.countRuns(id)
        if (used > 0)
          throw new AppError(
            'conflict',
            `principle set '${id}' is used by ${used} run(s) and cannot be deleted`,
          )
        await txSets.delete(id)
      })
      return reply.code(204).send(null)
    },
  )
}
