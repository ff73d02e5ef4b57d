/** `sso runs create|list|get|cancel|pause|resume|watch`: training runs on the service. */
import { readFile } from 'node:fs/promises'
import { AppError } from '../../errors.ts'
import { isJsonObject } from '../../json-object.ts'
import type { ApiClient } from '../api-client.ts'
import { API_OPTIONS, clientFor, wantsJson } from '../api-options.ts'
import {
  type Command,
  type CommandContext,
  integerOption,
  listOption,
  positionalArgs,
  stringOption,
  UsageError,
} from '../command.ts'
import { readCliEnvironment } from '../environment.ts'
import { formatKeyValues, formatTable, printJson } from '../output.ts'
import { listAll, matchPrefix, namesById, resolveId } from '../resource-ids.ts'
import { type RunLike, runRow } from '../run-summary.ts'
import { watchRun } from '../watch-run.ts'

/** `key=value` pairs; values are parsed as JSON when they parse (numbers, booleans, arrays), else kept as text. */
export function parseAssignments(pairs: string[], option: string, command: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`--${option} expects key=value, got '${pair}'`, command)
    const key = pair.slice(0, eq)
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    try {
      value = JSON.parse(raw)
    } catch {
      // plain text value
    }
    out[key] = value
  }
  return out
}

async function readJsonFile(
  path: string,
  option: string,
  command: Command,
): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new UsageError(`--${option}: cannot read '${path}': ${(e as Error).message}`, command)
  }
  try {
    const value = JSON.parse(text) as unknown
    if (!isJsonObject(value)) throw new Error('not a JSON object')
    return value
  } catch (e) {
    throw new UsageError(`--${option}: '${path}' is not a JSON object: ${(e as Error).message}`, command)
  }
}

interface Page<T> {
  items: T[]
  next_cursor: string | null
}

/** A model id from a name, an id or the start of one; without one, the built-in tiny model. */
export async function resolveModelId(client: ApiClient, model: string | undefined): Promise<string> {
  const models = await listAll(client, 'models')
  const named = model ? models.find((m) => m.name === model) : models.find((m) => m.kind === 'builtin_tiny')
  if (named) return named.id
  if (model && /^[0-9a-f-]+$/i.test(model)) return matchPrefix(models, model, 'models').id
  const names = models.map((m) => m.name).join(', ') || 'none'
  throw new AppError(
    'not_found',
    `no model named '${model ?? '(built-in tiny)'}' on the service; models: ${names}`,
  )
}

const runPath = (id: string, action = '') => `/v1/runs/${encodeURIComponent(id)}${action}`

async function watch(ctx: CommandContext, id: string): Promise<number> {
  const env = readCliEnvironment()
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGINT', stop)
  try {
    const run = await watchRun(clientFor(ctx, env), id, {
      json: wantsJson(ctx),
      interactive: env.color,
      out: process.stdout,
      signal: controller.signal,
    })
    return run.status === 'failed' ? 1 : 0
  } finally {
    process.off('SIGINT', stop)
  }
}

export const runsCreate: Command = {
  path: ['runs', 'create'],
  summary: 'create a training run (queued for a worker)',
  options: {
    method: { type: 'string', arg: 'name', description: 'sso (default), sso_v2, pbaa, dpo, ipo, sft or rm' },
    model: {
      type: 'string',
      arg: 'name|id',
      description: 'model name or id (default: the built-in tiny model)',
    },
    'principle-set': { type: 'string', arg: 'name|id', description: 'principle set name or id' },
    dataset: { type: 'string', arg: 'name|id', multiple: true, description: 'dataset name or id' },
    set: {
      type: 'string',
      arg: 'key=value',
      multiple: true,
      description: 'a hyperparameter, e.g. --set lr=1e-4',
    },
    hyperparameters: { type: 'string', arg: 'file.json', description: 'hyperparameters from a JSON file' },
    device: { type: 'string', arg: 'device', description: 'auto, cpu, webgpu or cuda' },
    seed: { type: 'string', arg: 'n', description: 'random seed' },
    metadata: { type: 'string', arg: 'key=value', multiple: true, description: 'metadata pair' },
    body: { type: 'string', arg: 'file.json', description: 'full request body; flags override its fields' },
    watch: { type: 'boolean', short: 'w', description: 'watch the run after creating it' },
    ...API_OPTIONS,
  },
  details: `A model with recommended hyperparameters (the demo model) starts from them; --set and
--hyperparameters override single ones. Examples:
  sso runs create --model demo --dataset demo-queries --principle-set demo --watch   (the ready demo)
  sso runs create --method sso --dataset <queries dataset id> --set iterations=1 --watch   (built-in tiny model)
  sso runs create --body run.json --json`,
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const bodyFile = stringOption(ctx, 'body', this, false)
    const body: Record<string, unknown> = bodyFile ? await readJsonFile(bodyFile, 'body', this) : {}
    const hpFile = stringOption(ctx, 'hyperparameters', this, false)
    const hyperparameters = {
      ...((body.hyperparameters as Record<string, unknown> | undefined) ?? {}),
      ...(hpFile ? await readJsonFile(hpFile, 'hyperparameters', this) : {}),
      ...parseAssignments(listOption(ctx, 'set'), 'set', this),
    }
    body.method = stringOption(ctx, 'method', this, false) ?? body.method ?? 'sso'
    const client = clientFor(ctx)
    const model = stringOption(ctx, 'model', this, false)
    if (model || !body.model_id) body.model_id = await resolveModelId(client, model)
    // A model's recommended settings (the demo model's) are the base that the flags above override.
    const recommended = (
      await client.get<{ recommended_hyperparameters?: Record<string, unknown> }>(
        `/v1/models/${encodeURIComponent(String(body.model_id))}`,
      )
    ).recommended_hyperparameters
    if (recommended) Object.assign(hyperparameters, { ...recommended, ...hyperparameters })
    if (Object.keys(hyperparameters).length > 0) body.hyperparameters = hyperparameters
    const principleSet = stringOption(ctx, 'principle-set', this, false)
    if (principleSet) body.principle_set_id = await resolveId(client, 'principle-sets', principleSet)
    const datasets = listOption(ctx, 'dataset')
    if (datasets.length > 0)
      body.dataset_ids = await Promise.all(datasets.map((d) => resolveId(client, 'datasets', d)))
    const device = stringOption(ctx, 'device', this, false)
    if (device) body.device = device
    const seed = integerOption(ctx, 'seed', this)
    if (seed !== undefined) body.seed = seed
    const metadata = parseAssignments(listOption(ctx, 'metadata'), 'metadata', this)
    if (Object.keys(metadata).length > 0) {
      body.metadata = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, String(v)]))
    }
    const run = await client.post<RunLike>('/v1/runs', body)
    if (wantsJson(ctx) && !ctx.values.watch) printJson(run)
    else
      process.stdout.write(
        `created run ${run.id} (${run.status}); dashboard: ${client.baseUrl}/#/runs/${run.id}\n`,
      )
    return ctx.values.watch ? watch(ctx, run.id) : 0
  },
}

export const runsList: Command = {
  path: ['runs', 'list'],
  summary: 'list runs, newest first',
  options: {
    status: { type: 'string', arg: 'status', description: 'only runs in this status' },
    limit: { type: 'string', arg: 'n', default: '20', description: 'how many' },
    cursor: { type: 'string', arg: 'cursor', description: 'continue after a previous page' },
    ...API_OPTIONS,
  },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const client = clientFor(ctx)
    const page = await client.get<Page<RunLike>>('/v1/runs', {
      status: stringOption(ctx, 'status', this, false),
      limit: integerOption(ctx, 'limit', this),
      cursor: stringOption(ctx, 'cursor', this, false),
    })
    if (wantsJson(ctx)) {
      printJson(page)
      return 0
    }
    if (page.items.length === 0) process.stdout.write('no runs\n')
    else {
      const [models, datasets] = await Promise.all([
        namesById(client, 'models'),
        namesById(client, 'datasets'),
      ])
      const rows = page.items.map((run) => ({
        ...runRow(run),
        model: models.get(String(run.model_id)) ?? run.model_id,
        datasets: ((run.dataset_ids as string[] | undefined) ?? [])
          .map((d) => datasets.get(d) ?? d)
          .join(', '),
      }))
      process.stdout.write(
        formatTable(rows, ['id', 'method', 'status', 'step', 'model', 'datasets', 'created']),
      )
    }
    if (page.next_cursor) process.stdout.write(`more: sso runs list --cursor ${page.next_cursor}\n`)
    return 0
  },
}

export const runsGet: Command = {
  path: ['runs', 'get'],
  summary: 'show one run',
  args: '<run-id>',
  options: { ...API_OPTIONS },
  async run(ctx) {
    const [given] = positionalArgs(ctx, this, ['<run-id>'])
    const client = clientFor(ctx)
    const run = await client.get<RunLike>(runPath(await resolveId(client, 'runs', given)))
    if (wantsJson(ctx)) printJson(run)
    else process.stdout.write(formatKeyValues(run))
    return 0
  },
}

function action(name: 'cancel' | 'pause' | 'resume', summary: string): Command {
  return {
    path: ['runs', name],
    summary,
    args: '<run-id>',
    options: { ...API_OPTIONS },
    async run(ctx) {
      const [given] = positionalArgs(ctx, this, ['<run-id>'])
      const client = clientFor(ctx)
      const id = await resolveId(client, 'runs', given)
      const run = await client.post<RunLike>(runPath(id, `/${name}`))
      if (wantsJson(ctx)) printJson(run)
      else process.stdout.write(`run ${id}: ${run?.status ?? `${name} requested`}\n`)
      return 0
    },
  }
}

export const runsCancel = action('cancel', 'cancel a run (it stops within one step and keeps a checkpoint)')
export const runsPause = action('pause', 'pause a running run (checkpoint, then wait for resume)')
export const runsResume = action('resume', 'resume a paused run')

export const runsWatch: Command = {
  path: ['runs', 'watch'],
  summary: 'follow a run live: progress bar with step, loss and ETA',
  args: '<run-id>',
  options: { ...API_OPTIONS },
  details: `With --json every stream frame is printed as one JSON line.
Exit code: 0 when the run succeeded or was cancelled, 1 when it failed.`,
  async run(ctx) {
    const [given] = positionalArgs(ctx, this, ['<run-id>'])
    return watch(ctx, await resolveId(clientFor(ctx), 'runs', given))
  },
}
