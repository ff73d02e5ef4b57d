import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { type Config, runOutputDir } from '../config.ts'
import type { StoredCheckpoint } from '../db/checkpoints-repository.ts'
import type { PrismaClient } from '../db/client.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFramesNow } from '../db/run-frames.ts'
import { AppError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { PgBoss } from '../queue/boss.ts'
import { requeueRun, type Scheduling, transitionRun } from '../queue/run-lifecycle.ts'
import type { RunDto, RunStatus } from '../schemas/runs.ts'
import type {
  CheckpointInfo,
  ControlSignal,
  Device,
  MetricsBatch,
  RunTrainer,
  TrainerEvent,
  TrainerJob,
  TrainerResult,
} from '../sso/trainer-interface.ts'
import { FrameWriter } from './frame-writer.ts'
import { MlflowTracker } from './mlflow-tracker.ts'

export interface WorkerDeps {
  config: Config
  boss: PgBoss
  /** Set on shutdown: running trainers checkpoint and their runs go back to the queue. */
  stopping: { value: boolean }
  prisma: PrismaClient
  log: Logger
  workerId: string
  runTrainer: RunTrainer
  /** Folder of the built-in tiny model, created on first use. */
  ensureTinyModel(dir: string): Promise<void>
  heartbeatMs: number
  /** A run whose worker was silent this long is taken over by the next attempt. */
  staleAfterMs: number
}

function scheduling(deps: WorkerDeps): Scheduling {
  return { prisma: deps.prisma, boss: deps.boss, webhooks: deps.config.WEBHOOK_URL !== undefined }
}

/** How often the run's status is read for control(): cancel and pause land within this delay. */
const CONTROL_POLL_MS = 250

function controlFor(status: RunStatus, stopping: boolean): ControlSignal {
  if (status === 'running') return stopping ? 'pause' : 'continue'
  if (status === 'cancelling' || status === 'cancelled') return 'cancel'
  return 'pause'
}

async function buildTrainerJob(
  deps: WorkerDeps,
  run: RunDto,
  resumeFrom: StoredCheckpoint | null,
): Promise<TrainerJob> {
  const repos = createRepositories(deps.prisma)
  const model = await repos.models.findById(run.model_id)
  if (!model)
    throw new AppError('model_load_failed', `model '${run.model_id}' of run '${run.id}' no longer exists`)
  let modelDir = model.path
  if (model.kind === 'builtin_tiny') {
    modelDir = path.join(deps.config.dataDir, 'models', 'tiny')
    await deps.ensureTinyModel(modelDir)
  }
  const version = run.principle_set_version_id
    ? await repos.principleSets.findVersionById(run.principle_set_version_id)
    : null
  const datasets = await repos.datasets.findManyByIds(run.dataset_ids)
  const outputDir = runOutputDir(deps.config, run.id)
  await mkdir(outputDir, { recursive: true })
  const device = (run.device === 'auto' ? deps.config.EXECUTION_PROVIDER : run.device) as Device
  return {
    runId: run.id,
    method: run.method,
    modelDir,
    principleSet: version
      ? { name: version.name, principles: version.principles, concision: version.concision ?? undefined }
      : undefined,
    datasetPaths: run.dataset_ids
      .map((id) => datasets.find((d) => d.id === id)?.path)
      .filter((p): p is string => !!p),
    hyperparameters: run.hyperparameters,
    device,
    seed: run.seed,
    outputDir,
    resumeFrom: resumeFrom?.dir,
    memoryBudgetBytes: deps.config.runMemoryBytes,
  }
}

/**
 * Trains one run attempt: claims the run, streams metrics/events/samples/checkpoints through the
 * frame writer, heartbeats, answers control() from the run's status, and records the outcome.
 */
export async function runJob(deps: WorkerDeps, runId: string): Promise<void> {
  const { prisma, workerId } = deps
  const log = deps.log.child({ runId, workerId })
  const repos = createRepositories(prisma)
  const claimed = await repos.runs.claim(runId, workerId, new Date(Date.now() - deps.staleAfterMs))
  if (!claimed) {
    const current = await repos.runs.findStatus(runId)
    // Still held: the previous attempt is saving its pause checkpoint, or its worker died so recently
    // that its heartbeat is not stale yet. Fail the job so pg-boss retries it shortly.
    if (current === 'queued' || current === 'running' || current === 'cancelling') {
      throw new AppError('invalid_state', `run '${runId}' is still held by its previous worker`)
    }
    log.info({ status: current }, 'run not available to this worker; job dropped')
    return
  }
  const resumeFrom = await repos.checkpoints.findLatest(runId)
  const attempt = { attempt: claimed.attempt, worker_id: workerId, resumed_from_step: resumeFrom?.step ?? 0 }
  let status: RunStatus = claimed.status
  if (status === 'queued') {
    const started = await transitionRun(
      scheduling(deps),
      runId,
      ['queued'],
      'running',
      { startedAt: claimed.started_at ? undefined : new Date() },
      attempt,
    )
    if (!started) {
      await repos.runs.release(runId, workerId)
      return
    }
    status = 'running'
  } else {
    // Taken over from a worker that died: stream clients learn of the new attempt here.
    await appendRunFramesNow(prisma, runId, [
      { type: 'status', step: claimed.current_step, data: { status, ...attempt, taken_over: true } },
    ])
  }
  log.info(attempt, 'training run')

  const outageBudgetMs = deps.config.DB_OUTAGE_BUDGET_SECONDS * 1000
  let currentStep = resumeFrom?.step ?? 0
  /** Set when another attempt took the run (this worker was taken for dead): this one stops quietly. */
  let lost = false
  let outageTooLong = false
  const beat = async () => {
    if (!(await repos.runs.heartbeat(runId, workerId, currentStep)) && !lost) {
      lost = true
      log.warn('the run was taken over by another attempt; this one stops')
    }
  }
  const writer = new FrameWriter(prisma, runId, log, (outageMs) => {
    // At once, before another worker takes the silent run for dead.
    beat().catch((err) => log.warn({ err }, 'heartbeat failed'))
    writer.push({
      type: 'status',
      step: currentStep,
      data: { status, resumed_after_outage_ms: Math.round(outageMs) },
    })
  })
  const mlflow = MlflowTracker.forRun(deps.config, claimed, repos.runs, log)
  // A resumed attempt repeats what followed its checkpoint: values already stored keep their first
  // write, and those the previous attempt never wrote (an iteration's metrics, logged at the last step
  // of the iteration before) are written now.
  const storedMetrics = await repos.metrics.storedFrom(runId, resumeFrom?.step ?? 0)
  const stored = new Set(storedMetrics.map((m) => metricId(m.step, m.key)))
  const storedUpTo = storedMetrics.reduce((max, m) => Math.max(max, m.step), 0)
  const pendingWrites: Promise<unknown>[] = []
  const track = (p: Promise<unknown>) => {
    pendingWrites.push(p.catch((err) => log.error({ err }, 'write failed')))
  }

  const poll = setInterval(() => {
    if (writer.outageMs() > 0) return
    repos.runs.findStatus(runId).then(
      (s) => {
        if (s) status = s
      },
      (err) => log.warn({ err }, 'status poll failed'),
    )
  }, CONTROL_POLL_MS)
  const heartbeat = setInterval(() => {
    beat().catch((err) => {
      if (writer.outageMs() === 0) log.warn({ err }, 'heartbeat failed')
    })
  }, deps.heartbeatMs)

  const control = (): ControlSignal => {
    const signal = lost ? 'pause' : controlFor(status, deps.stopping.value)
    if (signal !== 'continue' || writer.outageMs() <= outageBudgetMs) return signal
    if (!outageTooLong) {
      outageTooLong = true
      log.warn(
        { outageBudgetMs },
        'database unreachable beyond the outage budget; the run checkpoints and is queued again',
      )
      writer.push({
        type: 'warning',
        step: currentStep,
        data: {
          message: 'database unreachable beyond the outage budget: the run checkpoints and is queued again',
        },
      })
    }
    return 'pause'
  }

  let result: TrainerResult | undefined
  let failure: unknown
  try {
    const job = await buildTrainerJob(deps, claimed, resumeFrom)
    result = await deps.runTrainer(job, {
      onMetrics(batch: MetricsBatch) {
        currentStep = Math.max(currentStep, batch.step)
        const values = Object.fromEntries(
          Object.entries(batch.values).filter(
            ([key, value]) =>
              !stored.has(metricId(batch.step, key)) && (batch.step > storedUpTo || Number.isFinite(value)),
          ),
        )
        if (Object.keys(values).length === 0) return
        mlflow?.logMetrics(batch.step, values)
        const rows = Object.entries(values)
          .filter(([, v]) => Number.isFinite(v))
          .map(([key, value]) => ({
            runId,
            key,
            step: batch.step,
            value,
            iteration: batch.iteration ?? null,
          }))
        writer.push(
          {
            type: 'metrics',
            step: batch.step,
            data: { iteration: batch.iteration ?? null, values },
          },
          rows,
        )
      },
      onEvent(event: TrainerEvent) {
        writer.push({
          type: event.type,
          step: currentStep,
          data: {
            message: event.message,
            ...(event.phase ? { phase: event.phase } : {}),
            ...(event.data ?? {}),
          },
        })
      },
      async onCheckpoint(info: CheckpointInfo) {
        await writer.flush()
        const checkpoint = await writer.durably('recording a checkpoint', () =>
          repos.checkpoints.upsert({
            runId,
            step: info.step,
            iteration: info.iteration,
            kind: info.kind,
            dir: info.dir,
            bytes: info.bytes,
          }),
        )
        writer.push({
          type: 'checkpoint',
          step: info.step,
          data: {
            checkpoint_id: checkpoint.id,
            iteration: info.iteration,
            kind: info.kind,
            bytes: info.bytes,
          },
        })
      },
      onSamples(iteration: number, records: Record<string, unknown>[]) {
        track(writer.durably('writing samples', () => repos.samples.createMany(runId, iteration, records)))
        writer.push({ type: 'samples', step: currentStep, data: { iteration, count: records.length } })
      },
      control,
      held: () => writer.outageMs() > 0,
    })
  } catch (e) {
    failure = e
  } finally {
    clearInterval(poll)
    clearInterval(heartbeat)
  }
  await Promise.all(pendingWrites)
  await writer.flush().catch((err) => {
    failure ??= err
  })
  await mlflow?.finish(failure || !result ? 'failed' : result.status)
  if (lost) return
  await writer.durably('recording the outcome', () => recordOutcome(deps, runId, log, result, failure))
}

const metricId = (step: number, key: string) => `${step}\u0000${key}`

async function recordOutcome(
  deps: WorkerDeps,
  runId: string,
  log: Logger,
  result: TrainerResult | undefined,
  failure: unknown,
): Promise<void> {
  const { prisma, workerId } = deps
  const repos = createRepositories(prisma)
  const done = { workerId: null, finishedAt: new Date() }
  if (failure || !result) {
    const error =
      failure instanceof AppError
        ? { code: failure.code, message: failure.message }
        : { code: 'training_failed', message: (failure as Error)?.message ?? 'the trainer returned nothing' }
    log.error({ err: failure }, 'run failed')
    const failed = await transitionRun(
      scheduling(deps),
      runId,
      ['running', 'cancelling', 'paused', 'queued'],
      'failed',
      { ...done, error },
    )
    // Already ended another way (cancelled while paused, say): only the hold is left to let go.
    if (!failed) await repos.runs.release(runId, workerId)
    return
  }
  await repos.runs.heartbeat(runId, workerId, result.finalStep)
  let ended: RunDto | null = null
  if (result.status === 'succeeded') {
    ended = await transitionRun(scheduling(deps), runId, ['running', 'paused', 'cancelling'], 'succeeded', {
      ...done,
      deviceUsed: result.device,
    })
  } else if (result.status === 'cancelled') {
    ended = await transitionRun(
      scheduling(deps),
      runId,
      ['running', 'cancelling', 'paused', 'queued'],
      'cancelled',
      { ...done, deviceUsed: result.device },
    )
  } else ended = await requeueRun(scheduling(deps), runId, workerId)
  // The run ended or was queued again without this attempt (a paused run cancelled or resumed
  // before the attempt let go of it): the attempt still holds it, and lets go.
  if (!ended) await repos.runs.release(runId, workerId)
  log.info(
    { status: result.status, finalStep: result.finalStep, device: result.device },
    'run attempt finished',
  )
}
