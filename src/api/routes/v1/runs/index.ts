import { randomInt } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError, NotFoundError } from '../../../../errors.ts'
import { createRun } from '../../../../queue/run-lifecycle.ts'
import { IdParamsSchema, PageSchema } from '../../../../schemas/common.ts'
import { ACTIVE_STATUSES, RunCreateSchema, RunListQuerySchema, RunSchema } from '../../../../schemas/runs.ts'
import { checkRunSettings, parseHyperparameters } from '../../../../sso/hyperparameters.ts'
import { targetProject } from '../../../plugins/app/project-scope.ts'
import { assertFitsMemory } from './memory-budget.ts'
import { assertTrainingData } from './training-data.ts'

const problem = { $ref: 'Problem#' }
const tags = ['runs']

export const runsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { runs, models, principleSets, datasets } = app.repos

  app.post(
    '/runs',
    {
      schema: {
        tags,
        body: RunCreateSchema,
        response: { 201: RunSchema, 400: problem, 404: problem, 429: problem },
      },
    },
    async (request, reply) => {
      const body = request.body
      const key = request.apiKey!
      const active = await runs.countActiveByApiKey(key.id, ACTIVE_STATUSES)
      if (active >= app.config.MAX_ACTIVE_RUNS_PER_KEY) {
        throw new AppError(
          'rate_limited',
          `this API key already has ${active} active runs (limit ${app.config.MAX_ACTIVE_RUNS_PER_KEY}); wait for one to finish or cancel one`,
        )
      }
      const hyperparameters = parseHyperparameters(body.hyperparameters ?? {})
      checkRunSettings(hyperparameters, body.method, body.device ?? 'auto')
      // What the run uses must be in the project it is created in (or shared, the built-in model).
      const projectId = targetProject(request)
      const scope = projectId
      const model = await models.findById(body.model_id, scope)
      if (!model) throw new NotFoundError('model', body.model_id)
      let versionId: string | null = null
      if (body.principle_set_id) {
        const version = await principleSets.findVersion(
          body.principle_set_id,
          body.principle_set_version,
          scope,
        )
        if (!version) {
          const which = body.principle_set_version
            ? `${body.principle_set_id}@${body.principle_set_version}`
            : body.principle_set_id
          throw new NotFoundError('principle set', which)
        }
        versionId = version.id
      } else if (body.principle_set_version !== undefined) {
        throw new AppError('validation_failed', 'principle_set_version needs principle_set_id')
      }
      const datasetIds = [...new Set(body.dataset_ids ?? [])]
      const found = await datasets.findManyByIds(datasetIds, scope)
      const missing = datasetIds.filter((id) => !found.some((d) => d.id === id))
      if (missing.length > 0) throw new NotFoundError('dataset', missing.join(', '))
      assertTrainingData(body.method, found)
      assertFitsMemory(model, body.method, hyperparameters, app.config.runMemoryBytes)
      const run = await createRun(app.scheduling, {
        method: body.method,
        modelId: model.id,
        principleSetVersionId: versionId,
        datasetIds,
        hyperparameters,
        device: body.device ?? 'auto',
        seed: body.seed ?? randomInt(0, 2 ** 31 - 1),
        metadata: body.metadata ?? {},
        apiKeyId: key.id,
        projectId,
      })
      return reply.code(201).send(run)
    },
  )

  app.get(
    '/runs',
    {
      schema: {
        tags,
        querystring: RunListQuerySchema,
        response: { 200: PageSchema(RunSchema), 400: problem },
      },
    },
    async (request) =>
      runs.list({ ...request.query, limit: request.query.limit ?? 50 }, request.projectScope),
  )

  app.get(
    '/runs/:id',
    { schema: { tags, params: IdParamsSchema, response: { 200: RunSchema, 404: problem } } },
    async (request) => {
      const run = await runs.findById(request.params.id, request.projectScope)
      if (!run) throw new NotFoundError('run', request.params.id)
      return run
    },
  )
}
