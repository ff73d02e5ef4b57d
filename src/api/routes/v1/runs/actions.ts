import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { NotFoundError } from '../../../../errors.ts'
import { cancelRun, pauseRun, resumeRun } from '../../../../queue/run-lifecycle.ts'
import { IdParamsSchema } from '../../../../schemas/common.ts'
import { RunSchema } from '../../../../schemas/runs.ts'

const problem = { $ref: 'Problem#' }
const tags = ['runs']

export const runActionsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Another project's run is not found: checked before any action touches it.
  app.addHook('preHandler', async (request) => {
    const { id } = request.params as { id: string }
    if (!(await app.repos.runs.findStatus(id, request.projectScope))) throw new NotFoundError('run', id)
  })
  const schema = (description: string) => ({
    tags,
    description: `${description} Takes no body (an empty JSON object is accepted).`,
    params: IdParamsSchema,
    response: { 200: RunSchema, 404: problem, 409: problem },
  })
  app.post(
    '/runs/:id/cancel',
    { schema: schema('Stops the run within one training step; a checkpoint is saved first.') },
    async (request) => cancelRun(app.scheduling, request.params.id),
  )
  app.post(
    '/runs/:id/pause',
    { schema: schema('Checkpoints and releases the run; resume continues from that checkpoint.') },
    async (request) => pauseRun(app.scheduling, request.params.id),
  )
  app.post('/runs/:id/resume', { schema: schema('Queues a paused run again.') }, async (request) =>
    resumeRun(app.scheduling, request.params.id),
  )
}
