import { readFile, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { runOutputDir } from '../../../config.ts'
import { Prisma } from '../../../db/client.ts'
import type { ModelsRepository } from '../../../db/models-repository.ts'
import type { ProjectScope } from '../../../db/project-scope.ts'
import { AppError, InvalidStateError, NotFoundError, ValidationError } from '../../../errors.ts'
import { isJsonObject } from '../../../json-object.ts'
import { IdParamsSchema, PageQuerySchema, PageSchema } from '../../../schemas/common.ts'
import { ModelCreateSchema, ModelSchema } from '../../../schemas/models.ts'
import { targetProject } from '../../plugins/app/project-scope.ts'
import { findUnstorable } from '../../plugins/app/request-text.ts'

const problem = { $ref: 'Problem#' }
const tags = ['models']

/** Name of the built-in tiny model: always registered, generated on first use by the worker. */
export const TINY_MODEL_NAME = 'tiny'

/**
 * Resolves a user-given folder below MODELS_ROOT, following symlinks, and refuses anything that
 * ends up outside it.
 */
async function resolveModelFolder(modelsRoot: string, given: string): Promise<string> {
  const candidate = path.resolve(modelsRoot, given)
  let real: string
  let root: string
  try {
    root = await realpath(modelsRoot)
  } catch {
    throw new ValidationError(
      `MODELS_ROOT '${modelsRoot}' does not exist; create it and put model folders in it`,
    )
  }
  const inside = (p: string, r: string) => p === r || p.startsWith(r + path.sep)
  if (!inside(candidate, path.resolve(modelsRoot))) {
    throw new ValidationError(
      `model path '${given}' is outside the models root (MODELS_ROOT: ${modelsRoot})`,
      { path: given },
    )
  }
  try {
    real = await realpath(candidate)
  } catch {
    throw new ValidationError(
      `model folder '${given}' does not exist below the models root (MODELS_ROOT: ${modelsRoot})`,
      { path: given },
    )
  }
  if (!inside(real, root))
    throw new ValidationError(
      `model path '${given}' is outside the models root (MODELS_ROOT: ${modelsRoot})`,
      { path: given },
    )
  if (!(await stat(real)).isDirectory()) throw new ValidationError(`model path '${given}' is not a folder`)
  return real
}

/** Hugging Face configs are a few kilobytes; a larger file is not one, and is not read into memory. */
const MAX_CONFIG_BYTES = 1 << 20

/**
 * The folder's config.json, as it will be stored and served: a JSON object whose strings Postgres can
 * hold. Anything else is refused here, since a stored config that is not an object would break every
 * later listing of the project's models.
 */
export async function readHfConfig(dir: string, given: string): Promise<Record<string, unknown>> {
  const file = path.join(dir, 'config.json')
  const fail = (why: string) => new AppError('model_load_failed', `config.json of '${given}' ${why}`)
  let text: string
  try {
    const { size } = await stat(file)
    if (size > MAX_CONFIG_BYTES)
      throw fail(`is ${size} bytes; a Hugging Face config is at most ${MAX_CONFIG_BYTES}`)
    text = await readFile(file, 'utf8')
  } catch (e) {
    if (e instanceof AppError) throw e
    throw new AppError(
      'model_load_failed',
      `model folder '${given}' has no config.json (a Hugging Face folder is expected)`,
    )
  }
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (e) {
    throw fail(`is not valid JSON: ${(e as Error).message}`)
  }
  if (!isJsonObject(config))
    throw fail(
      `is not a JSON object but ${Array.isArray(config) ? 'an array' : config === null ? 'null' : `a ${typeof config}`}`,
    )
  const unstorable = findUnstorable(config, 'config.json')
  if (unstorable) throw fail(`cannot be stored: ${unstorable}`)
  return config
}

/** Where a succeeded run that trained a policy left its final model. */
async function finalModelFolder(app: FastifyInstance, runId: string, scope: ProjectScope): Promise<string> {
  const run = await app.repos.runs.findById(runId, scope)
  if (!run) throw new NotFoundError('run', runId)
  if (run.status !== 'succeeded')
    throw new InvalidStateError(`run '${runId}' is ${run.status}; only a succeeded run has a final model`, {
      status: run.status,
    })
  if (run.method === 'rm')
    throw new ValidationError(`run '${runId}' trained a reward model, not a policy to train further`)
  return path.join(runOutputDir(app.config, runId), 'final')
}

/** Registers the built-in model once per database; the worker writes its files when first needed. */
export async function ensureBuiltinModels(models: ModelsRepository): Promise<void> {
  if (await models.findByName(TINY_MODEL_NAME)) return
  await models
    // No project: every project sees it, and none may remove it.
    .create({ name: TINY_MODEL_NAME, kind: 'builtin_tiny', path: 'builtin:tiny', projectId: null })
    .catch(async (e) => {
      // Another process registered it at the same moment.
      if (!(await models.findByName(TINY_MODEL_NAME))) throw e
    })
}

export const modelsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const models = app.repos.models

  app.post(
    '/models',
    {
      schema: {
        tags,
        body: ModelCreateSchema,
        response: { 201: ModelSchema, 400: problem, 404: problem, 409: problem, 422: problem },
      },
    },
    async (request, reply) => {
      const { name, path: given, run_id: runId } = request.body
      if ((given === undefined) === (runId === undefined))
        throw new ValidationError(
          'give either path (a model folder below MODELS_ROOT) or run_id (a succeeded run whose final model to register)',
        )
      const dir = given
        ? await resolveModelFolder(app.config.modelsRoot, given)
        : await finalModelFolder(app, runId!, request.projectScope)
      const config = await readHfConfig(dir, given ?? `final model of run ${runId}`)
      const projectId = targetProject(request)
      try {
        return reply
          .code(201)
          .send(await models.create({ name, kind: 'local_hf', path: dir, config, projectId }))
      } catch (e) {
        // The unique name, checked by the insert itself: two concurrent registrations cannot both pass.
        if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002')
          throw new AppError('conflict', `a model named '${name}' already exists`)
        throw e
      }
    },
  )

  app.get(
    '/models',
    {
      schema: {
        tags,
        querystring: PageQuerySchema,
        response: { 200: PageSchema(ModelSchema), 400: problem },
      },
    },
    async (request) => models.list(request.projectScope, request.query.limit ?? 50, request.query.cursor),
  )

  app.get(
    '/models/:id',
    { schema: { tags, params: IdParamsSchema, response: { 200: ModelSchema, 404: problem } } },
    async (request) => {
      const model = await models.findById(request.params.id, request.projectScope)
      if (!model) throw new NotFoundError('model', request.params.id)
      return model
    },
  )

  app.delete(
    '/models/:id',
    { schema: { tags, params: IdParamsSchema, response: { 204: Type.Null(), 404: problem, 409: problem } } },
    async (request, reply) => {
      const model = await models.findById(request.params.id, request.projectScope)
      if (!model) throw new NotFoundError('model', request.params.id)
      if (model.kind === 'builtin_tiny')
        throw new AppError('conflict', 'the built-in model is shared by every project and cannot be removed')
      const used = await app.repos.runs.countByModel(model.id)
      if (used > 0) throw new AppError('conflict', `model '${model.name}' is used by ${used} run(s)`)
      await models.delete(model.id)
      return reply.code(204).send(null)
    },
  )
}
