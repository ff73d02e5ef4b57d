/**
 * Run state changes shared by the API and the worker. Each change is a conditional update plus a
 * `status` frame on the run's stream in one transaction; the ones that schedule work enqueue the job
 * in that same transaction, so a run is never queued without a job or the reverse.
 */
import type { PrismaClient } from '../db/client.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFrames } from '../db/run-frames.ts'
import type { RunInsert, RunStatusChange } from '../db/runs-repository.ts'
import { InvalidStateError, NotFoundError } from '../errors.ts'
import type { RunDto, RunStatus } from '../schemas/runs.ts'
import { enqueueRun, type PgBoss } from './boss.ts'

export async function createRun(prisma: PrismaClient, boss: PgBoss, input: RunInsert): Promise<RunDto> {
  return prisma.$transaction(async (tx) => {
    const repos = createRepositories(tx)
    if (input.principleSetVersionId) await repos.principleSets.lockVersion(input.principleSetVersionId)
    const run = await repos.runs.create(input)
    await appendRunFrames(tx, run.id, [{ type: 'status', step: 0, data: { status: run.status } }])
    await enqueueRun(boss, tx, run.id)
    return run
  })
}

/** Moves a run from one of `from` to `to` and streams the change; null when it was in another status. */
export async function transitionRun(
  prisma: PrismaClient,
  runId: string,
  from: readonly RunStatus[],
  to: RunStatus,
  change: RunStatusChange = {},
  extra: Record<string, unknown> = {},
): Promise<RunDto | null> {
  return prisma.$transaction(async (tx) => {
    const run = await createRepositories(tx).runs.transition(runId, from, to, change)
    if (run) {
      const data = { status: to, ...(change.error ? { error: change.error } : {}), ...extra }
      await appendRunFrames(tx, runId, [{ type: 'status', step: run.current_step, data }])
    }
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
export async function cancelRun(prisma: PrismaClient, runId: string): Promise<RunDto> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const run = await current(prisma, runId)
    if (run.status === 'cancelling' || run.status === 'cancelled') return run
    if (run.status === 'running') {
      const moved = await transitionRun(prisma, runId, ['running'], 'cancelling')
      if (moved) return moved
    } else if (run.status === 'queued' || run.status === 'paused') {
      const moved = await transitionRun(prisma, runId, ['queued', 'paused'], 'cancelled', {
        finishedAt: new Date(),
      })
      if (moved) return moved
    } else refuse(run, 'cancelled')
  }
  return refuse(await current(prisma, runId), 'cancelled')
}

/** Pause: the worker checkpoints within a step and lets the run go; resume queues it again. */
export async function pauseRun(prisma: PrismaClient, runId: string): Promise<RunDto> {
  const moved = await transitionRun(prisma, runId, ['queued', 'running'], 'paused')
  if (moved) return moved
  const run = await current(prisma, runId)
  return run.status === 'paused' ? run : refuse(run, 'paused')
}

export async function resumeRun(prisma: PrismaClient, boss: PgBoss, runId: string): Promise<RunDto> {
  const resumed = await prisma.$transaction(async (tx) => {
    const run = await createRepositories(tx).runs.transition(runId, ['paused'], 'queued')
    if (!run) return null
    await appendRunFrames(tx, runId, [
      { type: 'status', step: run.current_step, data: { status: 'queued', resumed: true } },
    ])
    await enqueueRun(boss, tx, runId)
    return run
  })
  if (resumed) return resumed
  const run = await current(prisma, runId)
  return run.status === 'queued' ? run : refuse(run, 'resumed')
}

/** A running run whose worker is shutting down: back to the queue, to resume from its checkpoint elsewhere. */
export async function requeueRun(
  prisma: PrismaClient,
  boss: PgBoss,
  runId: string,
  workerId: string,
): Promise<RunDto | null> {
  return prisma.$transaction(async (tx) => {
    const runs = createRepositories(tx).runs
    const held = await runs.findById(runId)
    if (!held || held.worker_id !== workerId) return null
    const run = await runs.transition(runId, ['running'], 'queued', { workerId: null })
    if (!run) return null
    await appendRunFrames(tx, runId, [
      { type: 'status', step: run.current_step, data: { status: 'queued', requeued: true } },
    ])
    await enqueueRun(boss, tx, runId)
    return run
  })
}
