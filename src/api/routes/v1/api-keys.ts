import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
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
        response: { 201: ApiKeyCreatedSchema, 400: problem },
      },
    },
    async (request, reply) => {
      const created = await createApiKey(app.repos.apiKeys, request.body.name, request.body.scopes)
      return reply.code(201).send(created)
    },
  )
  app.get(
    '/api-keys',
    {
      config: admin,
      schema: { tags: ['api-keys'], response: { 200: Type.Object({ items: Type.Array(ApiKeySchema) }) } },
    },
    async () => ({ items: await app.repos.apiKeys.list() }),
  )
  app.delete(
    '/api-keys/:id',
    {
      config: admin,
      schema: { tags: ['api-keys'], params: IdParamsSchema, response: { 204: Type.Null(), 404: problem } },
    },
    async (request, reply) => {
      if (!(await app.repos.apiKeys.revoke(request.params.id)))
        throw new NotFoundError('api key', request.params.id)
      app.forgetVerifiedKeys()
      // Its open streams close now rather than at the next periodic check.
      void app.streamKeys.check()
      return reply.code(204).send(null)
    },
  )
}
