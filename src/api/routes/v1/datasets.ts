import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { createRepositories } from '../../../db/repositories.ts'
import { AppError, NotFoundError } from '../../../errors.ts'
import { writeFileAtomically } from '../../../model/atomic-folder.ts'
import { IdParamsSchema, PageQuerySchema, PageSchema } from '../../../schemas/common.ts'
import { DatasetSchema, DatasetUploadQuerySchema } from '../../../schemas/datasets.ts'
import { validateDataset } from '../../../sso/records.ts'
import { targetProject } from '../../plugins/app/project-scope.ts'
import { unstorableLines } from '../../plugins/app/request-text.ts'

const problem = { $ref: 'Problem#' }
const tags = ['datasets']

/** Stores the text under DATA_DIR/datasets/<sha256>.jsonl (identical uploads share one file). */
export async function storeDatasetContent(
  dataDir: string,
  text: string,
): Promise<{ file: string; hash: string }> {
  const hash = createHash('sha256').update(text).digest('hex')
  const dir = path.join(dataDir, 'datasets')
  const file = path.join(dir, `${hash}.jsonl`)
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true })
    await writeFileAtomically(file, text)
  }
  return { file, hash }
}

export const datasetsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const datasets = app.repos.datasets

  app.post(
    '/datasets',
    {
      bodyLimit: app.config.BODY_LIMIT_BYTES,
      schema: {
        tags,
        description:
          'Upload JSONL (content-type application/x-ndjson); every line is validated against the format.',
        querystring: DatasetUploadQuerySchema,
        body: Type.String({ description: 'JSONL text' }),
        consumes: ['application/x-ndjson', 'text/plain'],
        response: { 201: DatasetSchema, 400: problem, 413: problem, 422: problem },
      },
    },
    async (request, reply) => {
      const { name, format } = request.query
      const text = request.body
      const unstorable = unstorableLines(text)
      const parsed = unstorable.length > 0 ? { rows: [], errors: unstorable } : validateDataset(format, text)
      if (parsed.errors.length > 0) {
        const first = parsed.errors[0]
        throw new AppError(
          'dataset_invalid',
          `line ${first.line} is not a valid ${format} record: ${first.message}` +
            (parsed.errors.length > 1 ? ` (and ${parsed.errors.length - 1} more bad line(s))` : ''),
          { errors: parsed.errors },
        )
      }
      if (parsed.rows.length === 0) throw new AppError('dataset_invalid', 'the dataset has no records')
      const { file, hash } = await storeDatasetContent(app.config.dataDir, text)
      const stored = await datasets.create({
        name,
        format,
        contentHash: hash,
        lineCount: parsed.rows.length,
        bytes: Buffer.byteLength(text),
        path: file,
        projectId: targetProject(request),
      })
      return reply.code(201).send(stored)
    },
  )

  app.get(
    '/datasets',
    {
      schema: {
        tags,
        querystring: PageQuerySchema,
        response: { 200: PageSchema(DatasetSchema), 400: problem },
      },
    },
    async (request) => datasets.list(request.projectScope, request.query.limit ?? 50, request.query.cursor),
  )

  app.get(
    '/datasets/:id',
    { schema: { tags, params: IdParamsSchema, response: { 200: DatasetSchema, 404: problem } } },
    async (request) => {
      const dataset = await datasets.findById(request.params.id, request.projectScope)
      if (!dataset) throw new NotFoundError('dataset', request.params.id)
      return dataset
    },
  )

  app.get(
    '/datasets/:id/content',
    {
      schema: {
        tags,
        params: IdParamsSchema,
        produces: ['application/x-ndjson'],
        response: { 200: Type.String(), 404: problem },
      },
    },
    async (request, reply) => {
      const dataset = await datasets.findById(request.params.id, request.projectScope)
      if (!dataset) throw new NotFoundError('dataset', request.params.id)
      return reply.type('application/x-ndjson').send(createReadStream(dataset.path))
    },
  )

  app.delete(
    '/datasets/:id',
    { schema: { tags, params: IdParamsSchema, response: { 204: Type.Null(), 404: problem, 409: problem } } },
    async (request, reply) => {
      const { id } = request.params
      if (!(await datasets.findById(id, request.projectScope))) throw new NotFoundError('dataset', id)
      const deleted = await app.prisma.$transaction(async (tx) => {
        const repos = createRepositories(tx)
        // Locked, so that a run being created on it either commits first (and is counted) or waits.
        if ((await repos.datasets.lock([id], 'update')).length === 0) return false
        const used = await repos.runs.countUsingDataset(id)
        if (used > 0) throw new AppError('conflict', `dataset '${id}' is used by ${used} run(s)`)
        return repos.datasets.delete(id)
      })
      if (!deleted) throw new NotFoundError('dataset', id)
      return reply.code(204).send(null)
    },
  )
}
