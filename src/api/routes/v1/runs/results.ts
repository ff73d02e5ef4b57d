import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { StoredCheckpoint } from '../../../../db/checkpoints-repository.ts'
import type { ProjectScope } from '../../../../db/project-scope.ts'
import { NotFoundError, ValidationError } from '../../../../errors.ts'
import { IdParamsSchema } from '../../../../schemas/common.ts'
import {
  type CheckpointDto,
  CheckpointFileParamsSchema,
  CheckpointSchema,
  EventListQuerySchema,
  EventPageSchema,
  MetricsQuerySchema,
  MetricsResponseSchema,
  SampleSchema,
  SamplesQuerySchema,
} from '../../../../schemas/runs.ts'

const problem = { $ref: 'Problem#' }
const tags = ['runs']

async function listFiles(dir: string): Promise<{ name: string; bytes: number }[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  const files = entries.filter((e) => e.isFile())
  return Promise.all(
    files.map(async (e) => ({ name: e.name, bytes: (await stat(path.join(dir, e.name))).size })),
  )
}

async function toDto(c: StoredCheckpoint): Promise<CheckpointDto> {
  return {
    id: c.id,
    step: c.step,
    iteration: c.iteration,
    kind: c.kind,
    bytes: c.bytes,
    files: await listFiles(c.dir),
    created_at: c.createdAt.toISOString(),
  }
}

/** Read endpoints of a run's results: events, metrics history, samples and checkpoints. */
export const runResultsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { runs, events, metrics, samples, checkpoints } = app.repos
  /** Every route here first finds the run in the caller's project: another project's run is a 404. */
  const requireRun = async (id: string, scope: ProjectScope) => {
    if (!(await runs.findStatus(id, scope))) throw new NotFoundError('run', id)
  }

  app.get(
    '/runs/:id/events',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        querystring: EventListQuerySchema,
        response: { 200: EventPageSchema, 400: problem, 404: problem },
      },
    },
    async (request) => {
      await requireRun(request.params.id, request.projectScope)
      const limit = request.query.limit ?? 100
      const items = await events.listAfter(
        request.params.id,
        request.query.after_seq ?? 0,
        limit,
        request.query.type,
      )
      return { items, next_after_seq: items.length === limit ? items[items.length - 1].seq : null }
    },
  )

  app.get(
    '/runs/:id/metrics',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        querystring: MetricsQuerySchema,
        response: { 200: MetricsResponseSchema, 400: problem, 404: problem },
      },
    },
    async (request) => {
      const q = request.query
      if (q.step_from !== undefined && q.step_to !== undefined && q.step_from > q.step_to) {
        throw new ValidationError(`step_from (${q.step_from}) is after step_to (${q.step_to})`)
      }
      await requireRun(request.params.id, request.projectScope)
      const series = await metrics.history(request.params.id, q)
      return { run_id: request.params.id, series }
    },
  )

  app.get(
    '/runs/:id/samples',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        querystring: SamplesQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(SampleSchema) }), 400: problem, 404: problem },
      },
    },
    async (request) => {
      await requireRun(request.params.id, request.projectScope)
      const q = request.query
      return {
        items: await samples.list(request.params.id, { ...q, limit: q.limit ?? 100, offset: q.offset ?? 0 }),
      }
    },
  )

  app.get(
    '/runs/:id/checkpoints',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        response: { 200: Type.Object({ items: Type.Array(CheckpointSchema) }), 404: problem },
      },
    },
    async (request) => {
      await requireRun(request.params.id, request.projectScope)
      return { items: await Promise.all((await checkpoints.listByRun(request.params.id)).map(toDto)) }
    },
  )

  app.get(
    '/runs/:id/checkpoints/:checkpointId/files/:file',
    {
      schema: {
        tags,
        description:
          'Downloads one file of a checkpoint (safetensors weights, config.json, tokenizer files, trainer state).',
        params: CheckpointFileParamsSchema,
        produces: ['application/octet-stream'],
        response: { 200: Type.String({ format: 'binary' }), 400: problem, 404: problem },
      },
    },
    async (request, reply) => {
      const { id, checkpointId, file } = request.params
      await requireRun(id, request.projectScope)
      const checkpoint = await checkpoints.findById(id, checkpointId)
      if (!checkpoint) throw new NotFoundError('checkpoint', checkpointId)
      const files = await listFiles(checkpoint.dir)
      const entry = files.find((f) => f.name === file)
      if (!entry) throw new NotFoundError('checkpoint file', `${checkpointId}/${file}`)
      // Every file is a download, JSON ones included, as the contract says.
      return reply
        .type('application/octet-stream')
        .header('content-length', entry.bytes)
        .header('content-disposition', `attachment; filename="${file}"`)
        .send(createReadStream(path.join(checkpoint.dir, file)))
    },
  )
}
