/**
 * Read endpoints under an open-loop load of RATE requests/s (default 1000) for BENCH_SECONDS (default 10),
 * against the service in its own process on loopback. Latency counts from the scheduled send time, so
 * a stalled server cannot hide its queueing. Prints one JSON line per phase: first /healthz (the
 * peer: the same HTTP stack without Postgres), then the run read endpoints, with the ratio of p99s.
 * Target on the reference machine: p99 < 20 ms at 1000 req/s.
 */
import http from 'node:http'
import { createPrisma } from '../src/db/client.ts'
import { createRepositories } from '../src/db/repositories.ts'
import { type BenchService, startBenchService, summarize, uploadBenchQueries } from './service-process.ts'

const RATE = Number(process.env.RATE ?? 1000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
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

async function load(service: BenchService, paths: string[]) {
  const latencies: number[] = []
  let errors = 0
  const total = RATE * SECONDS
  const start = performance.now()
  const pending: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    pending.push(
      get(service.url + paths[i % paths.length], service.apiKey).then(
        (status) => {
          if (status !== 200) errors++
          latencies.push(performance.now() - due)
        },
        () => {
          errors++
        },
      ),
    )
  }
  await Promise.all(pending)
  const elapsed = (performance.now() - start) / 1000
  return { ...summarize(latencies), errors, achieved_rps: Math.round(total / elapsed) }
}

const service = await startBenchService()
const prisma = createPrisma(service.databaseUrl, 2)
try {
  const headers = { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' }
  const models = await (await fetch(`${service.url}/v1/models`, { headers })).json()
  const datasetId = await uploadBenchQueries(service)
  const runIds: string[] = []
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${service.url}/v1/runs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        method: 'sso',
        model_id: models.items[0].id,
        dataset_ids: [datasetId],
        seed: i,
      }),
    })
    if (res.status !== 201) throw new Error(`run creation failed: ${res.status} ${await res.text()}`)
    runIds.push((await res.json()).id)
  }
  const repos = createRepositories(prisma)
  const rows = []
  for (let step = 1; step <= 2000; step++) {
    for (const key of ['loss', 'rewards/margins', 'rewards/accuracies'])
      rows.push({ runId: runIds[0], key, step, value: Math.sin(step) })
  }
  await repos.metrics.createMany(rows)
  const run = runIds[0]
  const readPaths = [
    `/v1/runs/${run}`,
    '/v1/runs?limit=20',
    `/v1/runs/${run}/metrics?keys=loss&max_points=200`,
    `/v1/runs/${run}/events?limit=50`,
    '/v1/principle-sets?limit=20',
  ]
  await load(service, readPaths) // warm-up of JIT, pools and caches on every path, not reported
  const peer = await load(service, ['/healthz'])
  console.log(JSON.stringify({ name: 'api/healthz (peer)', rate: RATE, seconds: SECONDS, ...peer }))
  if (process.env.PER_ENDPOINT) {
    for (const p of readPaths)
      console.log(JSON.stringify({ name: `api${p.replace(run, ':id')}`, ...(await load(service, [p])) }))
  }
  const reads = await load(service, readPaths)
  console.log(
    JSON.stringify({
      name: 'api/read-endpoints',
      rate: RATE,
      seconds: SECONDS,
      endpoints: readPaths.length,
      ...reads,
      p99_ratio_to_peer: Math.round((reads.p99_ms / peer.p99_ms) * 100) / 100,
      target_p99_ms: 20,
    }),
  )
} finally {
  agent.destroy()
  await prisma.$disconnect()
  await service.stop()
}
