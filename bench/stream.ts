/**
 * Fan-out latency of run streams while a run trains: a standalone worker process (`sso worker`, as
 * users scale out) trains an `sso` run on the built-in tiny model on this machine throughout, and
 * SUBSCRIBERS (default 1000) WebSocket clients, spread over two client processes, watch a second run
 * whose frames the bench writes through the worker's own path (FrameWriter: batched metrics rows +
 * frames, NOTIFY at commit) at ROWS_PER_SECOND metric rows/s (default 200: 20 steps/s of 10 metrics).
 * Latency = receive time - the time the trainer callback pushed the batch. The peer phase is one
 * subscriber under the same writer. One JSON line per phase, with the training steps the trained run
 * logged during the phase; target p99 < 100 ms. Every client counts the phase's frames it received;
 * the bench fails (exit 1) when any client missed one, skipped a seq or had to resync.
 *
 * The synthetic frames go to their own run (paused, so no worker takes it) rather than the training
 * run: seqs would stay unique there too (appending locks the run row), but a run of its own keeps the
 * rate at exactly ROWS_PER_SECOND, the expected frame count exact and the trained run's history clean.
 */
import { fork, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { createPrisma } from '../src/db/client.ts'
import { createLogger } from '../src/log.ts'
import { FrameWriter } from '../src/worker/frame-writer.ts'
import { type BenchService, startBenchService, summarize, uploadBenchQueries } from './service-process.ts'

const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 1000)
const ROWS_PER_SECOND = Number(process.env.ROWS_PER_SECOND ?? 200)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const KEYS = 10
const CLIENT_PROCESSES = 2
/** Long enough to outlast both phases on a slow machine: the run is cancelled once they are done. */
const TRAINING_HYPERPARAMETERS = {
  iterations: 100,
  epochs: 20,
  batch_size: 1,
  max_new_tokens: 8,
  generation_batch_size: 4,
}

interface ClientStats {
  latencies: number[]
  frames: number
  /** Per client: the phase's own (live) frames received, each seq once. */
  phaseFrames: number[]
  gaps: number
  resyncs: number
  connected: number
}

/** Child role: open `count` subscriptions, record latencies until told to stop. */
async function runClients(url: string, key: string, count: number, since: number): Promise<void> {
  const stats: ClientStats = { latencies: [], frames: 0, phaseFrames: [], gaps: 0, resyncs: 0, connected: 0 }
  const sockets: WebSocket[] = []
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () => {
        const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } })
        sockets.push(ws)
        const client = stats.phaseFrames.push(0) - 1
        let lastSeq = 0
        ws.on('message', (data) => {
          const m = JSON.parse(String(data))
          if (m.type === 'resync') stats.resyncs++
          if (typeof m.seq !== 'number') return
          if (m.seq !== lastSeq + 1) stats.gaps++
          const fresh = m.seq > lastSeq
          lastSeq = Math.max(lastSeq, m.seq)
          stats.frames++
          // Frames of earlier phases arrive as backfill; only this phase's live frames are counted and timed.
          if (fresh && typeof m.data?.emit_ms === 'number' && m.data.emit_ms >= since) {
            stats.phaseFrames[client]++
            stats.latencies.push(Date.now() - m.data.emit_ms)
          }
        })
        return new Promise<void>((resolve) => ws.once('open', () => resolve()))
      }),
    )
  }
  stats.connected = sockets.filter((s) => s.readyState === WebSocket.OPEN).length
  process.send!({ ready: true })
  process.once('message', () => {
    for (const s of sockets) s.terminate()
    process.send!({ stats }, () => process.exit(0))
  })
}

/** Calls the API with the bench's admin key; any answer but a 2xx stops the bench. */
async function api<T>(
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

const runStatus = async (service: BenchService, runId: string) =>
  (await api<{ status: string }>(service, 'GET', `/v1/runs/${runId}`)).status

/** The steps at which a run logged its training loss, in order. */
async function lossSteps(service: BenchService, runId: string): Promise<number[]> {
  const { series } = await api<{ series: { points: [number, number][] }[] }>(
    service,
    'GET',
    `/v1/runs/${runId}/metrics?keys=loss`,
  )
  return series[0]?.points.map(([step]) => step) ?? []
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

interface BenchWorker {
  /** Throws when the worker process is gone: the bench would measure nothing training. */
  assertAlive(): void
  /** SIGTERM, as a deployment stops it; resolves with the exit code ('0' after a clean shutdown) or signal. */
  stop(): Promise<string>
}

/** `sso worker` in its own process against the bench's database, with a data folder of its own. */
async function startBenchWorker(databaseUrl: string): Promise<BenchWorker> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sso-bench-worker-'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: '1',
    },
  })
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  )
  return {
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

async function phase(
  service: BenchService,
  runId: string,
  subscribers: number,
  step0: number,
  trainingRunId: string,
) {
  const url = `${service.url.replace('http', 'ws')}/v1/runs/${runId}/stream`
  const perProcess = Math.ceil(subscribers / CLIENT_PROCESSES)
  const since = Date.now()
  const children = Array.from({ length: Math.min(CLIENT_PROCESSES, subscribers) }, (_, i) =>
    fork(
      import.meta.filename,
      [
        'clients',
        url,
        service.apiKey,
        String(Math.min(perProcess, subscribers - i * perProcess)),
        String(since),
      ],
      {
        execArgv: ['--import', 'tsx'],
      },
    ),
  )
  await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))))
  const prisma = createPrisma(service.databaseUrl, 2)
  const writer = new FrameWriter(prisma, runId, createLogger('warn'))
  const stepsPerSecond = ROWS_PER_SECOND / KEYS
  const trainedBefore = (await lossSteps(service, trainingRunId)).length
  const start = performance.now()
  let step = step0
  while (performance.now() - start < SECONDS * 1000) {
    step++
    const values = Object.fromEntries(
      Array.from({ length: KEYS }, (_, k) => [`bench/m${k}`, Math.sin(step + k)]),
    )
    const rows = Object.entries(values).map(([key, value]) => ({ runId, key, step, value }))
    writer.push({ type: 'metrics', step, data: { values, emit_ms: Date.now() } }, rows)
    const due = start + ((step - step0) * 1000) / stepsPerSecond
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())))
  }
  await writer.flush()
  const trained = await lossSteps(service, trainingRunId)
  const trainingStatus = await runStatus(service, trainingRunId)
  await new Promise((r) => setTimeout(r, 1000)) // let the last frames arrive
  const stats = await Promise.all(
    children.map(
      (c) =>
        new Promise<ClientStats>((resolve) => {
          c.once('message', (m) => resolve((m as { stats: ClientStats }).stats))
          c.send('stop')
        }),
    ),
  )
  await prisma.$disconnect()
  const frames = step - step0
  const latencies = stats.flatMap((s) => s.latencies)
  const perClient = stats.flatMap((s) => s.phaseFrames)
  return {
    result: {
      subscribers,
      connected: stats.reduce((a, s) => a + s.connected, 0),
      metric_rows_per_s: ROWS_PER_SECOND,
      frames_sent_per_client: frames,
      frames_received_min: Math.min(...perClient),
      frames_received_max: Math.max(...perClient),
      clients_missing_frames: perClient.filter((n) => n < frames).length,
      frames_missing: perClient.reduce((a, n) => a + Math.max(0, frames - n), 0),
      frames_received_total: stats.reduce((a, s) => a + s.frames, 0),
      gaps: stats.reduce((a, s) => a + s.gaps, 0),
      resyncs: stats.reduce((a, s) => a + s.resyncs, 0),
      ...summarize(latencies),
      training_steps_logged: trained.length - trainedBefore,
      training_last_step: trained.at(-1) ?? null,
      training_run_status: trainingStatus,
    },
    step,
  }
}

if (process.argv[2] === 'clients') {
  await runClients(process.argv[3], process.argv[4], Number(process.argv[5]), Number(process.argv[6]))
} else {
  const service = await startBenchService()
  const failures: string[] = []
  let worker: BenchWorker | undefined
  try {
    worker = await startBenchWorker(service.databaseUrl)
    const alive = worker
    const models = await api<{ items: { id: string; name: string }[] }>(service, 'GET', '/v1/models')
    const tiny = models.items.find((m) => m.name === 'tiny')
    if (!tiny) throw new Error('the built-in tiny model is not listed')
    const datasetId = await uploadBenchQueries(service)
    const createRun = (hyperparameters: Record<string, unknown>) =>
      api<{ id: string }>(service, 'POST', '/v1/runs', {
        method: 'sso',
        model_id: tiny.id,
        dataset_ids: [datasetId],
        device: 'cpu',
        hyperparameters,
      })
    const training = await createRun(TRAINING_HYPERPARAMETERS)
    await waitFor(
      'the training run to log its first step',
      async () => {
        alive.assertAlive()
        const status = await runStatus(service, training.id)
        if (status !== 'queued' && status !== 'running') throw new Error(`the training run is ${status}`)
        return status === 'running' && (await lossSteps(service, training.id)).length > 0 ? true : undefined
      },
      300_000,
    )
    // Created once the worker is busy with the training run, and paused at once so no worker takes it.
    const streamed = await createRun({})
    await api(service, 'POST', `/v1/runs/${streamed.id}/pause`)
    // Each phase starts after the previous one's frames, so subscribers backfill those first.
    const peer = await phase(service, streamed.id, 1, 0, training.id)
    console.log(JSON.stringify({ name: 'stream/1-subscriber (peer)', seconds: SECONDS, ...peer.result }))
    const fan = await phase(service, streamed.id, SUBSCRIBERS, peer.step, training.id)
    console.log(
      JSON.stringify({
        name: `stream/${SUBSCRIBERS}-subscribers`,
        seconds: SECONDS,
        ...fan.result,
        p99_ratio_to_peer: Math.round((fan.result.p99_ms / peer.result.p99_ms) * 100) / 100,
        target_p99_ms: 100,
      }),
    )
    for (const [name, r] of [
      ['peer', peer.result],
      ['fan-out', fan.result],
    ] as const) {
      if (r.frames_missing > 0 || r.gaps > 0 || r.resyncs > 0 || r.connected < r.subscribers)
        failures.push(
          `${name}: ${r.clients_missing_frames} of ${r.subscribers} clients missed ${r.frames_missing} frames, ${r.gaps} gaps, ${r.resyncs} resyncs, ${r.connected} connected`,
        )
    }
    await api(service, 'POST', `/v1/runs/${training.id}/cancel`)
    await waitFor(
      'the training run to be cancelled',
      async () => ((await runStatus(service, training.id)) === 'cancelled' ? true : undefined),
      120_000,
    )
    const stopped = await alive.stop()
    worker = undefined
    if (stopped !== '0') throw new Error(`the worker did not stop cleanly (exit ${stopped})`)
  } finally {
    await worker?.stop()
    await service.stop()
  }
  if (failures.length > 0) {
    console.error(`stream bench failed: ${failures.join('; ')}`)
    process.exitCode = 1
  }
}
