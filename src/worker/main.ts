import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import closeWithGrace from 'close-with-grace'
import type { Config } from '../config.ts'
import type { PrismaClient } from '../db/client.ts'
import { openDatabase } from '../db/database.ts'
import { createRepositories } from '../db/repositories.ts'
import { WORKER_HEARTBEAT_MS } from '../db/workers-repository.ts'
import { chooseProvider, providerStatuses } from '../engine/index.ts'
import { createLogger, type Logger } from '../log.ts'
import { createBoss, enqueueRun, JOB_HEARTBEAT_SECONDS, type PgBoss, stopBoss } from '../queue/boss.ts'
import { GPU_DEVICES, type GpuDevice, TRAIN_RUN_QUEUE, trainQueueFor } from '../queue/jobs.ts'
import { startWebhookDelivery } from '../queue/webhook-delivery.ts'
import type { RunTrainer } from '../sso/trainer-interface.ts'
import { startJobPump } from './job-pump.ts'
import { runJob, type WorkerDeps } from './run-job.ts'
import { makeTinyModelOnce } from './tiny-model.ts'
import { trainerInProcess } from './trainer-process.ts'

export interface WorkerOptions {
  config: Config
  prisma: PrismaClient
  boss: PgBoss
  log: Logger
  /** Defaults to the SSO trainer (src/sso/trainer.ts) in a process of its own per attempt (trainerInProcess). */
  runTrainer?: RunTrainer
  heartbeatMs?: number
  staleAfterMs?: number
  pollingIntervalSeconds?: number
  /** How often to look for runs whose job was lost (see requeueOrphans). */
  sweepIntervalMs?: number
}

/**
 * Safety net behind pg-boss's own retries: a running or cancelling run whose worker has been silent
 * far longer than the takeover threshold (its job exhausted its retries or was lost) gets a new job,
 * which claims it and resumes from its last checkpoint. Claiming stays conditional, so a job for a
 * run that came back to life does nothing.
 */
export async function requeueOrphans(
  opts: Pick<WorkerOptions, 'prisma' | 'boss' | 'log'>,
  silentForMs: number,
): Promise<number> {
  const runs = createRepositories(opts.prisma).runs
  const orphans = await runs.listStale(['running', 'cancelling'], new Date(Date.now() - silentForMs))
  for (const run of orphans) {
    await enqueueRun(opts.boss, opts.prisma, run)
    opts.log.warn(
      { runId: run.id, status: run.status },
      'run had no live worker for a long time; queued a new job',
    )
  }
  return orphans.length
}

/**
 * The GPU devices whose runs this worker takes (WORKER_DEVICES). `auto` is every GPU provider that
 * works here on real hardware; a device named explicitly must work, or the worker does not start.
 */
export async function gpuDevicesServed(setting: string): Promise<GpuDevice[]> {
  if (setting === 'auto') {
    const working = (await providerStatuses()).filter((s) => s.available && !s.software)
    return GPU_DEVICES.filter((d) => working.some((s) => s.provider === d))
  }
  const named = GPU_DEVICES.filter((d) => setting.split(',').includes(d))
  for (const device of named) await chooseProvider(device)
  return named
}

export interface Worker {
  id: string
  /** Stops taking jobs; runs in progress checkpoint within a step and go back to the queue. */
  stop(): Promise<void>
}

/**
 * Takes train-run jobs (the shared queue and those of its GPU devices) with WORKER_CONCURRENCY runs at
 * once, over an existing client and queue.
 */
export async function createWorker(opts: WorkerOptions): Promise<Worker> {
  const id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  const log = opts.log.child({ workerId: id })
  const stopping = { value: false }
  const deps: WorkerDeps = {
    config: opts.config,
    boss: opts.boss,
    stopping,
    prisma: opts.prisma,
    log,
    workerId: id,
    runTrainer: opts.runTrainer ?? trainerInProcess({ nice: opts.config.TRAINING_NICE }),
    ensureTinyModel: makeTinyModelOnce,
    // Three beats fit in staleAfterMs: a busy event loop does not get a live run taken over.
    heartbeatMs: opts.heartbeatMs ?? 2000,
    // Below pg-boss's job heartbeat, so the retried job finds the dead worker's claim already stale.
    staleAfterMs: opts.staleAfterMs ?? (JOB_HEARTBEAT_SECONDS * 1000 * 2) / 3,
  }
  const devices = await gpuDevicesServed(opts.config.WORKER_DEVICES)
  // A device's own queue first: its runs can only be trained by workers like this one.
  const queues = [...devices.map(trainQueueFor), TRAIN_RUN_QUEUE]
  const workers = createRepositories(opts.prisma).workers
  await workers.register({
    id,
    hostname: hostname(),
    pid: process.pid,
    devices: ['cpu', ...devices],
    concurrency: opts.config.WORKER_CONCURRENCY,
  })
  const presence = setInterval(() => {
    workers.heartbeat(id).catch((err) => log.warn({ err }, 'worker heartbeat failed'))
  }, WORKER_HEARTBEAT_MS)
  presence.unref()
  const pump = startJobPump({
    boss: opts.boss,
    queues,
    concurrency: opts.config.WORKER_CONCURRENCY,
    pollingIntervalMs: (opts.pollingIntervalSeconds ?? 1) * 1000,
    log,
    handle: (runId) => runJob(deps, runId),
  })
  const sweep = setInterval(() => {
    requeueOrphans(opts, deps.staleAfterMs * 4).catch((err) => log.warn({ err }, 'orphan sweep failed'))
  }, opts.sweepIntervalMs ?? 60_000)
  sweep.unref()
  log.info({ concurrency: opts.config.WORKER_CONCURRENCY, queues }, 'worker taking jobs')
  return {
    id,
    stop: async () => {
      clearInterval(sweep)
      stopping.value = true
      await pump.stop()
      clearInterval(presence)
      await workers.stopped(id).catch((err) => log.warn({ err }, 'recording the stop failed'))
      log.info('worker stopped')
    },
  }
}

/** `npm run worker`: a standalone worker process against DATABASE_URL (or the embedded server). */
export async function startWorker(config: Config): Promise<{ close(): Promise<void> }> {
  const log = createLogger(config.LOG_LEVEL)
  const db = await openDatabase(config, log)
  const boss = await createBoss(db.url, log)
  await startWebhookDelivery(boss, config, log)
  const worker = await createWorker({ config, prisma: db.prisma, boss, log })
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      grace.uninstall()
      await worker.stop()
      await stopBoss(boss, log)
      await db.close()
    })()
    return closing
  }
  const grace = closeWithGrace({ delay: 60_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'worker crashed')
    else log.info({ signal }, 'worker shutting down')
    await close()
  })
  return { close }
}
