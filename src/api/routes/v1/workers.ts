import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { WorkerListQuerySchema, WorkerSchema } from '../../../schemas/workers.ts'

const problem = { $ref: 'Problem#' }

export const workersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/workers',
    {
      schema: {
        tags: ['workers'],
        description:
          'Worker processes: the devices each serves (a run asking for a device waits for a worker that has it) and the runs each holds.',
        querystring: WorkerListQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(WorkerSchema) }), 400: problem },
      },
    },
    async (request) => ({ items: await app.repos.workers.list(request.query.all ?? false) }),
  )
}
