/**
 * The service as the benchmarks see it: an embedded PostgreSQL owned by the benchmark and the API
 * started in a child process exactly as `npm start` starts it (no in-process worker), on loopback;
 * standalone workers (`sso worker`) beside it when a bench trains.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { applyMigrations } from '../src/db/migrate.ts'
import { trainingProcessEnv } from '../src/engine/index.ts'
import { createLogger } from '../src/log.ts'

export interface BenchService {
  url: string
  databaseUrl: string
  apiKey: string
  stop(): Promise<void>
}

const root = path.resolve(import.meta.dirname, '..')

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function startBenchService(): Promise<BenchService> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sso-bench-'))
  // mkdtemp makes it 0700; run as root, the server's `postgres` user must be able to enter it.
  await chmod(dir, 0o755)
  const log = createLogger('warn')
  const db: EmbeddedDatabase = await startEmbeddedPostgres(path.join(dir, 'postgres'), log)
  await applyMigrations(db.url, log)
  const apiKey = `sso_bench_${randomBytes(16).toString('base64url')}`
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      DATA_DIR: dir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      IN_PROCESS_WORKER: 'false',
      BOOTSTRAP_ADMIN_KEY: apiKey,
      RATE_LIMIT_PER_MINUTE: '10000000',
      MAX_ACTIVE_RUNS_PER_KEY: '1000',
    },
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/readyz`)).ok) break
    } catch {}
    if (i > 600) throw new Error('the service did not become ready in 60 s')
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    databaseUrl: db.url,
    apiKey,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
      await db.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Percentiles of a list of milliseconds, rounded to 0.01 ms. */
export function summarize(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN) * 100) / 100
  return { n: s.length, p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), max_ms: at(1) }
}

/** Uploads a small queries dataset (runs must name the data they train on) and returns its id. */
export async function uploadBenchQueries(service: BenchService): Promise<string> {
  const body = ['Say hello.', 'Name a colour.', 'What is 2 + 2?']
    .map((prompt) => JSON.stringify({ prompt }))
    .join('\n')
  const res = await fetch(`${service.url}/v1/datasets?name=bench-queries&format=queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/x-ndjson' },
    body,
  })
  if (res.status !== 201) throw new Error(`dataset upload failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { id: string }).id
}

/** Calls the API with the bench's admin key; any answer but a 2xx stops the bench. */
export async function api<T>(
  service: BenchService,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${service.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${service.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${await res.text()}`)
  return (await res.json()) as T
}

export const runStatus = async (service: BenchService, runId: string) =>
  (await api<{ status: string }>(service, 'GET', `/v1/runs/${runId}`)).status

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

export interface BenchWorker {
  pid: number
  /** Throws when the worker process is gone: the bench would measure nothing training. */
  assertAlive(): void
  /** SIGTERM, as a deployment stops it; resolves with the exit code ('0' after a clean shutdown) or signal. */
  stop(): Promise<string>
}

/**
 * `sso worker` in its own process against the bench's database, with a data folder of its own and
 * the environment `npm run worker` gives it.
 */
export async function startBenchWorker(databaseUrl: string): Promise<BenchWorker> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sso-bench-worker-'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: trainingProcessEnv({
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: '1',
    }),
  })
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  )
  return {
    pid: child.pid!,
    assertAlive() {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the worker exited (${child.signalCode ?? child.exitCode})`)
    },
    async stop() {
      child.kill('SIGTERM')
      const outcome = await exited
      await rm(dataDir, { recursive: true, force: true })
      return outcome
    },
  }
}

/** The steps at which a run logged its training loss, in order. */
async function lossSteps(service: BenchService, runId: string): Promise<number[]> {
  const { series } = await api<{ series: { points: [number, number][] }[] }>(
    service,
    'GET',
    `/v1/runs/${runId}/metrics?keys=loss`,
  )
  return series[0]?.points.map(([step]) => step) ?? []
}

/** A run a standalone worker trains throughout a bench. */
export interface TrainingRun {
  id: string
  /** More runs of the same kind (they queue while the worker is busy with this one). */
  createRun(hyperparameters: Record<string, unknown>, seed?: number): Promise<{ id: string }>
  /** The steps at which it logged its loss so far, and its status. */
  progress(): Promise<{ steps: number[]; status: string }>
}

/**
 * Runs `body` while a standalone worker trains an `sso` run on the built-in tiny model (from its
 * first logged step on); then cancels the run and stops the worker as a deployment does, failing
 * unless it exits cleanly.
 */
export async function withTrainingRun<T>(
  service: BenchService,
  hyperparameters: Record<string, unknown>,
  body: (run: TrainingRun) => Promise<T>,
): Promise<T> {
  const worker = await startBenchWorker(service.databaseUrl)
  let result: T
  try {
    const models = await api<{ items: { id: string; name: string }[] }>(service, 'GET', '/v1/models')
    const tiny = models.items.find((m) => m.name === 'tiny')
    if (!tiny) throw new Error('the built-in tiny model is not listed')
    const datasetId = await uploadBenchQueries(service)
    const createRun = (hp: Record<string, unknown>, seed?: number) =>
      api<{ id: string }>(service, 'POST', '/v1/runs', {
        method: 'sso',
        model_id: tiny.id,
        dataset_ids: [datasetId],
        device: 'cpu',
        hyperparameters: hp,
        ...(seed === undefined ? {} : { seed }),
      })
    const { id } = await createRun(hyperparameters)
    await waitFor(
      'the training run to log its first step',
      async () => {
        worker.assertAlive()
        const status = await runStatus(service, id)
        if (status !== 'queued' && status !== 'running') throw new Error(`the training run is ${status}`)
        return status === 'running' && (await lossSteps(service, id)).length > 0 ? true : undefined
      },
      300_000,
    )
    const progress = async () => ({
      steps: await lossSteps(service, id),
      status: await runStatus(service, id),
    })
    result = await body({ id, createRun, progress })
    await api(service, 'POST', `/v1/runs/${id}/cancel`)
    await waitFor(
      'the training run to be cancelled',
      async () => ((await runStatus(service, id)) === 'cancelled' ? true : undefined),
      120_000,
    )
  } catch (err) {
    await worker.stop()
    throw err
  }
  const stopped = await worker.stop()
  if (stopped !== '0') throw new Error(`the worker did not stop cleanly (exit ${stopped})`)
  return result
}
