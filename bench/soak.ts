/**
 * Memory of a long-lived worker: one standalone worker process (`sso worker`, started as `npm run
 * worker` starts it) trains RUNS short sso runs on the built-in tiny model one after another. One
 * JSON line per run: the worker's resident memory once the run is done (`rss_mb`; run 0 is the idle
 * worker), its peak during the run (`peak_mb`: VmHWM, reset before each run through
 * /proc/PID/clear_refs), the peak of the run's trainer process (`trainer_peak_mb`) and their sum
 * (`run_peak_mb`, an upper bound of the run's peak). The last line sums up: first and last RSS, the
 * spread of the last half of the runs ((max - min) / min; target ≤ 5%) and the highest run peak
 * (target < 1 GB).
 *
 *   node --import tsx bench/soak.ts [--runs 50] [--hyperparameters '{"iterations":2,...}']
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  api,
  type BenchWorker,
  runStatus,
  startBenchService,
  startBenchWorker,
  uploadBenchQueries,
  waitFor,
} from './service-process.ts'

/** Short but whole: generation, reference scoring, training steps, checkpoints, two iterations. */
const SHORT_RUN = {
  iterations: 2,
  batch_size: 2,
  lr: 1e-3,
  max_new_tokens: 16,
  generation_batch_size: 4,
  checkpoint_every: 2,
}

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '50' },
    hyperparameters: { type: 'string', default: JSON.stringify(SHORT_RUN) },
  },
})
const RUNS = Number(args.runs)

/** Resident and peak resident memory of a process, in MiB. */
function memoryOf(pid: number): { rss_mb: number; peak_mb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss_mb: Math.round(kb('VmRSS') / 1024), peak_mb: Math.round(kb('VmHWM') / 1024) }
}

/** Processes whose parent is `pid` (the trainer process of the run in progress). */
function childrenOf(pid: number): number[] {
  const found = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout
  return found.split('\n').filter(Boolean).map(Number)
}

/**
 * Watches the trainer processes the worker starts: the highest peak RSS (VmHWM) any of them reached,
 * as last read before it exited (read every 100 ms).
 */
function watchTrainers(workerPid: number): { peakMb(): number; stop(): void } {
  let peak = 0
  const timer = setInterval(() => {
    for (const pid of childrenOf(workerPid)) {
      try {
        peak = Math.max(peak, memoryOf(pid).peak_mb)
      } catch {}
    }
  }, 100)
  return {
    peakMb: () => peak,
    stop: () => clearInterval(timer),
  }
}

/** Makes VmHWM the current RSS, so that the next reading is the peak since now (Linux ≥ 4.0). */
const resetPeak = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, '5')

async function trainOne(
  service: Awaited<ReturnType<typeof startBenchService>>,
  worker: BenchWorker,
  body: Record<string, unknown>,
): Promise<{ status: string; seconds: number }> {
  const started = performance.now()
  const run = await api<{ id: string }>(service, 'POST', '/v1/runs', body)
  const status = await waitFor(
    `run ${run.id} to finish`,
    async () => {
      worker.assertAlive()
      const s = await runStatus(service, run.id)
      return s === 'queued' || s === 'running' ? undefined : s
    },
    600_000,
  )
  return { status, seconds: Math.round((performance.now() - started) / 100) / 10 }
}

const service = await startBenchService()
let worker: BenchWorker | undefined
try {
  worker = await startBenchWorker(service.databaseUrl)
  const models = await api<{ items: { id: string; name: string }[] }>(service, 'GET', '/v1/models')
  const tiny = models.items.find((m) => m.name === 'tiny')
  if (!tiny) throw new Error('the built-in tiny model is not listed')
  const body = {
    method: 'sso',
    model_id: tiny.id,
    dataset_ids: [await uploadBenchQueries(service)],
    device: 'cpu',
    hyperparameters: JSON.parse(args.hyperparameters),
  }
  const alive = worker
  await waitFor(
    'the worker to register',
    async () => {
      alive.assertAlive()
      const { items } = await api<{ items: { pid: number }[] }>(service, 'GET', '/v1/workers')
      return items.some((w) => w.pid === alive.pid) ? true : undefined
    },
    120_000,
  )
  console.log(JSON.stringify({ run: 0, status: 'idle', ...memoryOf(worker.pid) }))
  const rss: number[] = []
  let highest = 0
  for (let run = 1; run <= RUNS; run++) {
    resetPeak(worker.pid)
    const trainers = watchTrainers(worker.pid)
    const outcome = await trainOne(service, worker, { ...body, seed: run })
    trainers.stop()
    if (outcome.status !== 'succeeded') throw new Error(`run ${run} ended ${outcome.status}`)
    const memory = memoryOf(worker.pid)
    // An upper bound: the two peaks need not have been at the same moment.
    const runPeak = memory.peak_mb + trainers.peakMb()
    rss.push(memory.rss_mb)
    highest = Math.max(highest, runPeak)
    console.log(
      JSON.stringify({
        run,
        ...outcome,
        ...memory,
        trainer_peak_mb: trainers.peakMb(),
        run_peak_mb: runPeak,
      }),
    )
  }
  const tail = rss.slice(Math.floor(rss.length / 2))
  const spread = (Math.max(...tail) - Math.min(...tail)) / Math.min(...tail)
  console.log(
    JSON.stringify({
      name: 'soak',
      runs: RUNS,
      first_rss_mb: rss[0],
      last_rss_mb: rss.at(-1),
      tail_runs: tail.length,
      tail_min_rss_mb: Math.min(...tail),
      tail_max_rss_mb: Math.max(...tail),
      tail_spread_pct: Math.round(spread * 1000) / 10,
      target_tail_spread_pct: 5,
      max_run_peak_mb: highest,
      target_peak_mb: 1024,
    }),
  )
  const stopped = await worker.stop()
  worker = undefined
  if (stopped !== '0') throw new Error(`the worker did not stop cleanly (exit ${stopped})`)
} finally {
  await worker?.stop()
  await service.stop()
}
