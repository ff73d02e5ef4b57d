/**
 * Read endpoints under an open-loop load of RATE requests/s (default 1000) for BENCH_SECONDS (default 10),
 * against the service in its own process on loopback. Latency counts from the scheduled send time, so
 * a stalled server cannot hide its queueing. The reads are what dashboards poll, spread so that no
 * cache can make them one hot URL: the five read paths in turn (run, run list, metrics history with
 * max_points, events page, principle-set list), each over many URLs (every one of the RUNS runs,
 * several pages and filters), in a fixed pseudo-random order. Prints one JSON line per phase: first
 * /healthz (the peer: the same HTTP stack without Postgres), then, with PER_ENDPOINT=1, each read
 * path alone, then the five mixed; read phases report the service's read-cache hit ratio (from its
 * Prometheus counters). Target on the reference machine: p99 < 20 ms at 1000 req/s.
 * Throughout, a standalone worker process trains one of the runs read (an `sso` run on the built-in
 * tiny model) and writes its metrics and frames, so cached reads of that run are invalidated as in
 * real use; each read phase reports the training steps logged while it ran.
 */
import http from 'node:http'
import { createPrisma } from '../src/db/client.ts'
import { appendRunFramesNow } from '../src/db/run-frames.ts'
import {
  type BenchService,
  startBenchService,
  summarize,
  type TrainingRun,
  withTrainingRun,
} from './service-process.ts'

const RATE = Number(process.env.RATE ?? 1000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const WARM_SECONDS = 2
const RUNS = 50
const METRIC_STEPS = 1000
const METRIC_KEYS = ['loss', 'rewards/margins', 'rewards/accuracies']
const EVENTS_PER_RUN = 120
const PRINCIPLE_SETS = 30
/** Long enough to outlast every phase: the run is cancelled once they are done. */
const TRAINING_HYPERPARAMETERS = { iterations: 100, epochs: 20, batch_size: 1, max_new_tokens: 8 }
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function get(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
  })
}

/** The URLs of each read path: one list per path, each URL a different page, filter or run. */
function readPaths(runIds: string[]): Record<string, string[]> {
  const lists = (base: string, queries: string[]) => queries.map((q) => `${base}?${q}`)
  return {
    '/v1/runs/:id': runIds.map((id) => `/v1/runs/${id}`),
    '/v1/runs': lists('/v1/runs', [
      'limit=20',
      'limit=50',
      'limit=10',
      'limit=20&status=queued',
      'limit=20&method=sso',
      'limit=50&status=queued',
    ]),
    '/v1/runs/:id/metrics': runIds.flatMap((id) =>
      lists(`/v1/runs/${id}/metrics`, [
        'keys=loss&max_points=200',
        'keys=loss,rewards/margins&max_points=100',
      ]),
    ),
    '/v1/runs/:id/events': runIds.flatMap((id) =>
      lists(`/v1/runs/${id}/events`, ['limit=50', 'after_seq=50&limit=50']),
    ),
    '/v1/principle-sets': lists('/v1/principle-sets', ['limit=20', 'limit=10', 'limit=50']),
  }
}

/** RATE × SECONDS URLs taking the paths in turn, each path's URLs in a fixed pseudo-random order. */
function schedule(paths: string[][]): string[] {
  let seed = 42
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
  return Array.from({ length: RATE * SECONDS }, (_, i) => {
    const urls = paths[i % paths.length]
    return urls[Math.floor(next() * urls.length)]
  })
}

async function cacheCounters(service: BenchService) {
  const res = await fetch(`${service.url}/metrics`, {
    headers: { authorization: `Bearer ${service.apiKey}` },
  })
  const text = await res.text()
  const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  return { hits: counter('sso_read_cache_hits_total'), misses: counter('sso_read_cache_misses_total') }
}

async function load(service: BenchService, urls: string[]) {
  const latencies: number[] = []
  let errors = 0
  const start = performance.now()
  const pending: Promise<void>[] = []
  for (let i = 0; i < urls.length; i++) {
    const due = start + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    // From the scheduled time when the request left late (its queueing counts), from the send when
    // it left up to 1 ms early.
    const from = Math.min(due, performance.now())
    pending.push(
      get(service.url + urls[i], service.apiKey).then(
        (status) => {
          if (status !== 200) errors++
          latencies.push(performance.now() - from)
        },
        () => {
          errors++
        },
      ),
    )
  }
  await Promise.all(pending)
  const elapsed = (performance.now() - start) / 1000
  return { ...summarize(latencies), errors, achieved_rps: Math.round(urls.length / elapsed) }
}

/**
 * A load phase over read URLs, with the share of them the service answered from its cache. The
 * phase's own load runs WARM_SECONDS first, unreported: the phase measures the steady state of
 * clients that keep polling, not the burst of misses after a quiet spell (the previous phase read
 * other URLs, whose entries have expired).
 */
async function readPhase(service: BenchService, urls: string[], training: TrainingRun) {
  await load(service, urls.slice(0, RATE * WARM_SECONDS))
  const before = await cacheCounters(service)
  const stepsBefore = (await training.progress()).steps.length
  const result = await load(service, urls)
  const after = await cacheCounters(service)
  const trained = await training.progress()
  const hits = after.hits - before.hits
  const lookups = hits + after.misses - before.misses
  return {
    ...result,
    urls: new Set(urls).size,
    cache_hit_ratio: lookups > 0 ? Math.round((hits / lookups) * 1000) / 1000 : 0,
    training_steps_logged: trained.steps.length - stepsBefore,
    training_run_status: trained.status,
  }
}

async function createPrincipleSets(service: BenchService, headers: Record<string, string>) {
  for (let i = 0; i < PRINCIPLE_SETS; i++) {
    const res = await fetch(`${service.url}/v1/principle-sets`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: `set-${i}`,
        principles: [
          { feature: 'clarity', good: 'Write clearly.', bad: 'Write confusingly.' },
          { feature: 'honesty', good: 'Say when unsure.', bad: 'Pretend to know.' },
        ],
      }),
    })
    if (res.status !== 201)
      throw new Error(`principle set creation failed: ${res.status} ${await res.text()}`)
  }
}

/** Fills the database as workers would, then the read phases, while `training` trains. */
async function readUnderTraining(
  service: BenchService,
  prisma: ReturnType<typeof createPrisma>,
  training: TrainingRun,
) {
  const headers = { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' }
  // The other runs queue behind it (the worker trains one at a time) and are read, not trained.
  const queued: string[] = []
  for (let i = 1; i < RUNS; i++) queued.push((await training.createRun({}, i)).id)
  const runIds = [training.id, ...queued]
  await createPrincipleSets(service, headers)
  // What workers leave behind on the queued runs: metric rows in the order a run's writer stores them
  // (step by step, every key of a step together), frames, and table statistics as autovacuum keeps them.
  await prisma.$executeRaw`
    INSERT INTO metrics (run_id, key, step, value)
    SELECT r.id, k.key, s.step, sin(s.step)
    FROM runs r, unnest(${METRIC_KEYS}::text[]) AS k(key), generate_series(1, ${METRIC_STEPS}) AS s(step)
    WHERE r.id <> ${training.id}
    ORDER BY r.id, s.step, k.key`
  for (const runId of queued) {
    await appendRunFramesNow(
      prisma,
      runId,
      Array.from({ length: EVENTS_PER_RUN }, (_, i) => ({
        type: 'metrics',
        step: i + 1,
        data: { values: { loss: Math.sin(i) } },
      })),
    )
  }
  await prisma.$executeRaw`ANALYZE`
  const paths = readPaths(runIds)
  const mixed = schedule(Object.values(paths))
  await load(service, mixed) // warm-up of JIT, pools and caches on every path, not reported
  const peer = await load(
    service,
    Array.from({ length: RATE * SECONDS }, () => '/healthz'),
  )
  console.log(JSON.stringify({ name: 'api/healthz (peer)', rate: RATE, seconds: SECONDS, ...peer }))
  if (process.env.PER_ENDPOINT) {
    for (const [name, urls] of Object.entries(paths))
      console.log(
        JSON.stringify({
          name: `api${name}`,
          rate: RATE,
          seconds: SECONDS,
          ...(await readPhase(service, schedule([urls]), training)),
        }),
      )
  }
  const reads = await readPhase(service, mixed, training)
  console.log(
    JSON.stringify({
      name: 'api/read-endpoints',
      rate: RATE,
      seconds: SECONDS,
      endpoints: Object.keys(paths).length,
      ...reads,
      p99_ratio_to_peer: Math.round((reads.p99_ms / peer.p99_ms) * 100) / 100,
      target_p99_ms: 20,
    }),
  )
}

const service = await startBenchService()
const prisma = createPrisma(service.databaseUrl, 2)
try {
  await withTrainingRun(service, TRAINING_HYPERPARAMETERS, async (training) => {
    await readUnderTraining(service, prisma, training)
  })
} finally {
  agent.destroy()
  await prisma.$disconnect()
  await service.stop()
}
