/**
 * The service as the benchmarks see it: an embedded PostgreSQL owned by the benchmark and the API
 * started in a child process exactly as `npm start` starts it (no in-process worker), on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded-postgres.ts'
import { applyMigrations } from '../src/db/migrate.ts'
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
