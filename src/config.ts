import { totalmem } from 'node:os'
import path from 'node:path'
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { ValidationError } from './errors.ts'

/**
 * Process configuration: read once in each entry point (src/cli), validated, frozen and passed
 * down. Nothing else in src/ reads process.env. `.env.example` documents every variable.
 */
export const ConfigSchema = Type.Object({
  /** External Postgres. Unset: an embedded PostgreSQL is started in DATA_DIR/postgres. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ default: '.data', minLength: 1 }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Default execution provider for runs that ask for `auto`. */
  EXECUTION_PROVIDER: Type.Union(
    ['auto', 'cpu', 'webgpu', 'cuda'].map((l) => Type.Literal(l)),
    {
      default: 'auto',
    },
  ),
  /** Local Hugging Face model folders may only be registered below this directory. */
  MODELS_ROOT: Type.String({ default: 'models' }),
  /** Runs trained concurrently by one worker process. */
  WORKER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
  /**
   * Devices this worker trains runs on, beyond the `auto` and `cpu` runs every worker takes: `auto`
   * (the GPU providers it finds working, software adapters left out) or a list such as `cuda` or
   * `cpu` (a CPU-only worker on a GPU machine). Runs asking for a device wait for a worker that has it.
   */
  WORKER_DEVICES: Type.String({
    default: 'auto',
    pattern: '^(auto|(cpu|webgpu|cuda)(,(cpu|webgpu|cuda))*)$',
  }),
  /**
   * Niceness of the trainer thread (and the onnxruntime threads it starts): training takes the CPU
   * the API, the stream fan-out and Postgres leave idle. 0 keeps normal priority (Linux only).
   */
  TRAINING_NICE: Type.Integer({ minimum: 0, maximum: 19, default: 10 }),
  /** `npm start` runs one worker inside the API process unless this is false. */
  IN_PROCESS_WORKER: Type.Boolean({ default: true }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 6000 }),
  /** Wrong API keys a client address may present per minute; beyond it every request is a 429. */
  AUTH_FAILURES_PER_MINUTE: Type.Integer({ minimum: 1, default: 30 }),
  MAX_ACTIVE_RUNS_PER_KEY: Type.Integer({ minimum: 1, default: 8 }),
  /**
   * Register the ready demo at start when missing: the model `demo` (made in the background, about a
   * minute), the queries dataset `demo-queries` and the principle set `demo`.
   */
  DEMO_RESOURCES: Type.Boolean({ default: true }),
  /** Optional admin key to create at first start (otherwise one is generated and printed once). */
  BOOTSTRAP_ADMIN_KEY: Type.Optional(Type.String({ minLength: 24 })),
  /** Optional endpoint that receives run status changes (POST, JSON, signed with WEBHOOK_SECRET). */
  WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** HMAC-SHA256 key for the `x-sso-signature` header of webhook deliveries. */
  WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  /**
   * Longest time an API process serves a GET response from its cache; changes announced by any
   * process drop entries sooner (every write announces itself, so this only bounds what a missed
   * announcement could leave stale). Above a dashboard's 2 s polling, so one viewer hits the cache.
   * 0 disables the cache.
   */
  READ_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 5000 }),
  /**
   * How long a running run waits for its database to come back (its trainer paused between steps,
   * its metrics kept) before it gives up its worker: it then checkpoints and is queued again.
   */
  DB_OUTAGE_BUDGET_SECONDS: Type.Integer({ minimum: 1, default: 600 }),
  /**
   * Memory a worker's runs may use together, in GB (each of WORKER_CONCURRENCY runs gets its share).
   * Unset: the machine's memory minus headroom for the system, the API and Postgres.
   */
  WORKER_MEMORY_GB: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** Optional MLflow tracking server for runs that enable MLflow logging. */
  MLFLOW_TRACKING_URI: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Basic auth for the MLflow server (`mlflow server --app-name basic-auth`); set with the password. */
  MLFLOW_TRACKING_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  MLFLOW_TRACKING_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  /** Bearer token for the MLflow server (hosted MLflow); basic auth wins when both are set, as in MLflow's client. */
  MLFLOW_TRACKING_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
})

export type Config = Static<typeof ConfigSchema> & {
  readonly dataDir: string
  readonly modelsRoot: string
  /** Memory budget of one run: WORKER_MEMORY_GB (or its default) over WORKER_CONCURRENCY, in bytes. */
  readonly runMemoryBytes: number
}

const GB = 2 ** 30

/** What a worker leaves to the rest of the machine by default: 2 GB or 10%, whichever is more. */
export function defaultWorkerMemoryBytes(total = totalmem()): number {
  return Math.max(total - Math.max(2 * GB, total / 10), total / 2)
}

const KEYS = Object.keys(ConfigSchema.properties)

export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  const picked: Record<string, unknown> = {}
  for (const key of KEYS) if (env[key] !== undefined && env[key] !== '') picked[key] = env[key]
  const value = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, picked))
  const errors = [...Value.Errors(ConfigSchema, value)]
  const lines = errors.map((e) => `${e.instancePath.slice(1) || '(root)'}: ${e.message}`)
  const parsed = value as Static<typeof ConfigSchema>
  if ((parsed.MLFLOW_TRACKING_USERNAME === undefined) !== (parsed.MLFLOW_TRACKING_PASSWORD === undefined)) {
    lines.push('MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD: set both for basic auth, or neither')
  }
  if (lines.length > 0) {
    throw new ValidationError(`invalid configuration:\n  ${lines.join('\n  ')}`, lines)
  }
  return Object.freeze({
    ...parsed,
    dataDir: path.resolve(parsed.DATA_DIR),
    modelsRoot: path.resolve(parsed.MODELS_ROOT),
    runMemoryBytes:
      (parsed.WORKER_MEMORY_GB !== undefined ? parsed.WORKER_MEMORY_GB * GB : defaultWorkerMemoryBytes()) /
      parsed.WORKER_CONCURRENCY,
  })
}

/** Folder of a run's checkpoints and, once it succeeded, its final model (`final/`). */
export function runOutputDir(config: Pick<Config, 'dataDir'>, runId: string): string {
  return path.join(config.dataDir, 'runs', runId)
}
