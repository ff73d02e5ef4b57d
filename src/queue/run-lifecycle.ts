/**
 * Run state changes shared by the API and the worker. Each change is a conditional update plus a
 * `status` frame on the run's stream in one transaction; changes that schedule work enqueue the job in
 * that same transaction (a run is never queued without a job, or the reverse), and so does the
 * webhook delivery of the change when webhooks are configured.
 */
import type { Db, PrismaClient } from '../db/client.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFrames } from '../db/run-frames.ts'
import type { RunInsert, RunStatusChange } from '../db/runs-repository.ts'
import { InvalidStateError, NotFoundError } from '../errors.ts'
import type { RunDto, RunStatus } from '../schemas/runs.ts'
import { enqueueRun, enqueueWebhook, type PgBoss } from './boss.ts'
import { GPU_DEVICES } from './jobs.ts'

export interface Scheduling {
  prisma: PrismaClient
  boss: PgBoss
  /** Whether status changes are delivered to WEBHOOK_URL. */
  webhooks: boolean
}

async function recordStatus(
  s: Scheduling,
  tx: Db,
  run: RunDto,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const data = { status: run.status, ...(run.error ? { error: run.error } : {}), ...extra }
  await appendRunFrames(tx, run.id, [{ type: 'status', step: run.current_step, data }])
  if (s.webhooks) {
    await enqueueWebhook(s.boss, tx, {
      event: 'run.status_changed',
      run_id: run.id,
      status: run.status,
      step: run.current_step,
      error: run.error,
      at: new Date().toISOString(),
    })
  }
}

export async function createRun(s: Scheduling, input: RunInsert): Promise<RunDto> {
  return s.prisma.$transaction(async (tx) => {
    const repos = createRepositories(tx)
    if (input.principleSetVersionId) await repos.principleSets.lockVersion(input.principleSetVersionId)
    const kept = await repos.datasets.lock(input.datasetIds, 'share')
    const deleted = input.datasetIds.filter((id) => !kept.includes(id))
    if (deleted.length > 0) throw new NotFoundError('dataset', deleted.join(', '))
    const run = await repos.runs.create(input)
    await recordStatus(s, tx, run)
    await warnIfUnserved(tx, run)
    await enqueueRun(s.boss, tx, run)
    return run
  })
}

/** A run asking for a GPU that no live worker has would wait without a word: its stream says why. */
async function warnIfUnserved(tx: Db, run: RunDto): Promise<void> {
  if (!(GPU_DEVICES as readonly string[]).includes(run.device)) return
  if ((await createRepositories(tx).workers.countServing(run.device)) > 0) return
  const message = `no live worker serves ${run.device}: the run waits until a worker with it starts (WORKER_DEVICES)`
  await appendRunFrames(tx, run.id, [{ type: 'warning', step: 0, data: { message } }])
}

/** Moves a run from one of `from` to `to` and streams the change; null when it was in another status. */
export async function transitionRun(
  s: Scheduling,
  runId: string,
  from: readonly RunStatus[],
  to: RunStatus,
  change: RunStatusChange = {},
  extra: Record<string, unknown> = {},
): Promise<RunDto | null> {
  return s.prisma.$transaction(async (tx) => {
    const run = await createRepositories(tx).runs.transition(runId, from, to, change)
    if (run) await recordStatus(s, tx, run, extra)
    return run
  })
}

async function current(prisma: PrismaClient, runId: string): Promise<RunDto> {
  const run = await createRepositories(prisma).runs.findById(runId)
  if (!run) throw new NotFoundError('run', runId)
  return run
}

function refuse(run: RunDto, action: string): never {
  throw new InvalidStateError(`run '${run.id}' is ${run.status}; it cannot be ${action}`, {
    status: run.status,
  })
}

/**
 * Cancel: a run nobody trains (queued, paused) is cancelled at once; a running one becomes
 * `cancelling` and its worker stops within a step, saves a checkpoint and marks it cancelled.
 */
export async function cancelRun(s: Scheduling, runId: string): Promise<RunDto> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const run = await current(s.prisma, runId)
    if (run.status === 'cancelling' || run.status === 'cancelled') return run
    if (run.status === 'running') {
      const moved = await transitionRun(s, runId, ['running'], 'cancelling')
      if (moved) return moved
    } else if (run.status === 'queued' || run.status === 'paused') {
      const moved = await transitionRun(s, runId, ['queued', 'paused'], 'cancelled', {
        finishedAt: new Date(),
      })
      if (moved) return moved
    } else refuse(run, 'cancelled')
  }
  return refuse(await current(s.prisma, runId), 'cancelled')
}

/** Pause: the worker checkpoints within a step and lets the run go; resume queues it again. */
export async function pauseRun(s: Scheduling, runId: string): Promise<RunDto> {
  const moved = await transitionRun(s, runId, ['queued', 'running'], 'paused')
  if (moved) return moved
  const run = await current(s.prisma, runId)
  return run.status === 'paused' ? run : refuse(run, 'paused')
}

export async function resumeRun(s: Scheduling, runId: string): Promise<RunDto> {
  const resumed = await s.prisma.$transaction(async (tx) => {
    const run = await createRepositories(tx).runs.transition(runId, ['paused'], 'queued')
    if (!run) return null
    await recordStatus(s, tx, run, { resumed: true })
    await enqueueRun(s.boss, tx, run)
    return run
  })
  if (resumed) return resumed
  const run = await current(s.prisma, runId)
  return run.status === 'queued' ? run : refuse(run, 'resumed')
}

/** A running run whose worker is shutting down: back to the queue, to resume from its checkpoint elsewhere. */
export async function requeueRun(s: Scheduling, runId: string, workerId: string): Promise<RunDto | null> {
  return s.prisma.$transaction(async (tx) => {
    const runs = createRepositories(tx).runs
    const held = await runs.findById(runId)
    if (!held || held.worker_id !== workerId) return null
    const run = await runs.transition(runId, ['running'], 'queued', { workerId: null })
    if (!run) return null
    await recordStatus(s, tx, run, { requeued: true })
    await enqueueRun(s.boss, tx, run)
    return run
  })
}
