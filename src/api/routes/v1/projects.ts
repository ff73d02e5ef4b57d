import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { Prisma } from '../../../db/client.ts'
import { DEFAULT_PROJECT_ID } from '../../../db/project-scope.ts'
import { createProjectsRepository } from '../../../db/projects-repository.ts'
import { AppError, NotFoundError } from '../../../errors.ts'
import {
  ProjectCreateSchema,
  ProjectParamsSchema,
  ProjectSchema,
  WhoAmISchema,
} from '../../../schemas/projects.ts'

const problem = { $ref: 'Problem#' }
const tags = ['projects']
const admin = { scope: 'admin' as const }

/**
 * Projects: admin keys spanning every project create, list and delete them; any other key sees
 * only its own project (GET /v1/projects lists that one), so a client can show where it acts.
 */
export const projectsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const projects = app.repos.projects

  app.post(
    '/projects',
    {
      config: admin,
      schema: {
        tags,
        body: ProjectCreateSchema,
        response: { 201: ProjectSchema, 400: problem, 409: problem },
      },
    },
    async (request, reply) => {
      if (request.apiKey!.project_id !== null)
        throw new AppError('forbidden', 'only an admin key that spans every project may create projects')
      try {
        return reply.code(201).send(await projects.create(request.body.name))
      } catch (e) {
        if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002')
          throw new AppError('conflict', `a project named '${request.body.name}' already exists`)
        throw e
      }
    },
  )

  app.get(
    '/projects',
    {
      schema: {
        tags,
        description:
          'The projects this key can act in: every one for an admin key without a project, else its own.',
        response: { 200: Type.Object({ items: Type.Array(ProjectSchema) }) },
      },
    },
    async (request) => ({ items: await projects.list(request.projectScope) }),
  )

  app.get(
    '/whoami',
    {
      schema: {
        tags,
        description: 'The key this request presents and the project it acts in (null: every project).',
        response: { 200: WhoAmISchema },
      },
    },
    async (request) => {
      const scope = request.projectScope
      return { key: request.apiKey!, project: scope === null ? null : await projects.find(scope, scope) }
    },
  )

  app.get(
    '/projects/:project',
    { schema: { tags, params: ProjectParamsSchema, response: { 200: ProjectSchema, 404: problem } } },
    async (request) => {
      const project = await projects.find(request.params.project, request.projectScope)
      if (!project) throw new NotFoundError('project', request.params.project)
      return project
    },
  )

  app.delete(
    '/projects/:project',
    {
      config: admin,
      schema: {
        tags,
        description: 'Deletes an empty project and its API keys; one that still holds resources answers 409.',
        params: ProjectParamsSchema,
        response: { 204: Type.Null(), 404: problem, 409: problem },
      },
    },
    async (request, reply) => {
      if (request.apiKey!.project_id !== null)
        throw new AppError('forbidden', 'only an admin key that spans every project may delete projects')
      const project = await projects.find(request.params.project, null)
      if (!project) throw new NotFoundError('project', request.params.project)
      if (project.id === DEFAULT_PROJECT_ID)
        throw new AppError(
          'conflict',
          "the 'default' project holds what keys without a project create; it stays",
        )
      await app.prisma.$transaction(async (tx) => {
        // Row locks keep resources from arriving between the count and the delete.
        await tx.$executeRaw`SELECT 1 FROM projects WHERE id = ${project.id}::uuid FOR UPDATE`
        const held = await createProjectsRepository(tx).countResources(project.id)
        if (held > 0)
          throw new AppError(
            'conflict',
            `project '${project.name}' still holds ${held} resource(s) (runs, datasets, principle sets, models); delete them first`,
          )
        await createProjectsRepository(tx).delete(project.id)
      })
      // Its keys are gone: refuse them at once and close their streams.
      app.forgetVerifiedKeys()
      void app.streamKeys.check()
      return reply.code(204).send(null)
    },
  )
}
