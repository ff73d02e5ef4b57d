import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ALL_PROJECTS, DEFAULT_PROJECT_ID } from '../../../db/project-scope.ts'
import { NotFoundError } from '../../../errors.ts'
import { ApiKeyCreatedSchema, ApiKeyCreateSchema, ApiKeySchema } from '../../../schemas/api-keys.ts'
import { IdParamsSchema } from '../../../schemas/common.ts'
import { createApiKey } from '../../plugins/app/api-key-auth.ts'

const problem = { $ref: 'Problem#' }
const admin = { scope: 'admin' as const }

export const apiKeysRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/api-keys',
    {
      config: admin,
      schema: {
        tags: ['api-keys'],
        body: ApiKeyCreateSchema,
        description:
          "A key acts in `project_id` (id or name). Without one: the caller's project; for a caller spanning " +
          'every project, an admin key spans every project too and any other key is issued for `default`.',
        response: { 201: ApiKeyCreatedSchema, 400: problem, 404: problem },
      },
    },
    async (request, reply) => {
      const { name, scopes, project_id: named } = request.body
      let projectId = request.projectScope
      if (named !== undefined) {
        const project = await app.repos.projects.find(named, request.projectScope)
        if (!project) throw new NotFoundError('project', named)
        projectId = project.id
      } else if (projectId === ALL_PROJECTS && !scopes.includes('admin')) projectId = DEFAULT_PROJECT_ID
      const created = await createApiKey(app.repos.apiKeys, name, scopes, projectId)
      return reply.code(201).send(created)
    },
  )
  app.get(
    '/api-keys',
    {
      config: admin,
      schema: { tags: ['api-keys'], response: { 200: Type.Object({ items: Type.Array(ApiKeySchema) }) } },
    },
    async (request) => ({ items: await app.repos.apiKeys.list(request.projectScope) }),
  )
  app.delete(
    '/api-keys/:id',
    {
      config: admin,
      schema: { tags: ['api-keys'], params: IdParamsSchema, response: { 204: Type.Null(), 404: problem } },
    },
    async (request, reply) => {
      if (!(await app.repos.apiKeys.revoke(request.params.id, request.projectScope)))
        throw new NotFoundError('api key', request.params.id)
      app.forgetVerifiedKeys()
      // Its open streams close now rather than at the next periodic check.
      void app.streamKeys.check()
      return reply.code(204).send(null)
    },
  )
}
