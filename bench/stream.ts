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
import { fork } from 'node:child_process'
import WebSocket from 'ws'
import { createPrisma } from '../src/db/client.ts'
import { createLogger } from '../src/log.ts'
import { FrameWriter } from '../src/worker/frame-writer.ts'
import {
  api,
  type BenchService,
  startBenchService,
  summarize,
  type TrainingRun,
  withTrainingRun,
} from './service-process.ts'

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

async function phase(
  service: BenchService,
  runId: string,
  subscribers: number,
  step0: number,
  training: TrainingRun,
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
  const trainedBefore = (await training.progress()).steps.length
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
  const { steps: trained, status: trainingStatus } = await training.progress()
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
  try {
    await withTrainingRun(service, TRAINING_HYPERPARAMETERS, async (training) => {
      // Created once the worker is busy with the training run, and paused at once so no worker takes it.
      const streamed = await training.createRun({})
      await api(service, 'POST', `/v1/runs/${streamed.id}/pause`)
      // Each phase starts after the previous one's frames, so subscribers backfill those first.
      const peer = await phase(service, streamed.id, 1, 0, training)
      console.log(JSON.stringify({ name: 'stream/1-subscriber (peer)', seconds: SECONDS, ...peer.result }))
      const fan = await phase(service, streamed.id, SUBSCRIBERS, peer.step, training)
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
    })
  } finally {
    await service.stop()
  }
  if (failures.length > 0) {
    console.error(`stream bench failed: ${failures.join('; ')}`)
    process.exitCode = 1
  }
}
