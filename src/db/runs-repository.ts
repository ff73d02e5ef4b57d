import { randomUUID } from 'node:crypto'
import type { Metadata } from '../schemas/common.ts'
import type { RunDto, RunError, RunListQuery, RunStatus } from '../schemas/runs.ts'
import type { Device, TrainingMethod } from '../sso/trainer-interface.ts'
import { type Db, Prisma } from './client.ts'
import { pageQuery, toPage } from './cursor.ts'
import { ALL_PROJECTS, inProject, type ProjectScope } from './project-scope.ts'
import { notifyResourceChange } from './resource-changes.ts'
import { storableJson } from './storable.ts'

const select = {
  id: true,
  status: true,
  method: true,
  modelId: true,
  principleSetVersionId: true,
  datasetIds: true,
  hyperparameters: true,
  device: true,
  deviceUsed: true,
  seed: true,
  metadata: true,
  attempt: true,
  workerId: true,
  currentStep: true,
  heartbeatAt: true,
  mlflowRunId: true,
  error: true,
  createdAt: true,
  startedAt: true,
  finishedAt: true,
} as const

type Row = Prisma.RunGetPayload<{ select: typeof select }>

function toDto(r: Row): RunDto {
  return {
    id: r.id,
    status: r.status,
    method: r.method as TrainingMethod,
    model_id: r.modelId,
    principle_set_version_id: r.principleSetVersionId,
    dataset_ids: r.datasetIds,
    hyperparameters: r.hyperparameters as Record<string, unknown>,
    device: r.device as Device,
    device_used: r.deviceUsed,
    seed: r.seed,
    metadata: r.metadata as Metadata,
    attempt: r.attempt,
    worker_id: r.workerId,
    current_step: r.currentStep,
    heartbeat_at: r.heartbeatAt?.toISOString() ?? null,
    mlflow_run_id: r.mlflowRunId,
    error: (r.error as RunError | null) ?? null,
    created_at: r.createdAt.toISOString(),
    started_at: r.startedAt?.toISOString() ?? null,
    finished_at: r.finishedAt?.toISOString() ?? null,
  }
}

export interface RunInsert {
  method: TrainingMethod
  modelId: string
  principleSetVersionId: string | null
  datasetIds: string[]
  hyperparameters: Record<string, unknown>
  device: Device
  seed: number
  metadata: Metadata
  apiKeyId: string | null
  projectId: string
}

/** Fields a status change may set alongside the status. */
export interface RunStatusChange {
  workerId?: string | null
  deviceUsed?: string
  error?: RunError | null
  startedAt?: Date
  finishedAt?: Date
  attempt?: number
}

export function createRunsRepository(db: Db) {
  return {
    async create(input: RunInsert): Promise<RunDto> {
      const data = {
        id: randomUUID(),
        ...input,
        hyperparameters: input.hyperparameters as Prisma.InputJsonValue,
        metadata: input.metadata as Prisma.InputJsonValue,
      }
      return toDto(await db.run.create({ data, select }))
    },
    async findById(id: string, scope: ProjectScope = ALL_PROJECTS): Promise<RunDto | null> {
      const row = await db.run.findUnique({ where: { id, ...inProject(scope) }, select })
      return row ? toDto(row) : null
    },
    async findStatus(id: string, scope: ProjectScope = ALL_PROJECTS): Promise<RunStatus | null> {
      const row = await db.run.findUnique({ where: { id, ...inProject(scope) }, select: { status: true } })
      return row?.status ?? null
    },
    async list(query: RunListQuery & { limit: number }, scope: ProjectScope) {
      const filters: Prisma.RunWhereInput[] = [
        inProject(scope),
        query.status ? { status: query.status } : {},
        query.method ? { method: query.method } : {},
        query.created_after ? { createdAt: { gte: new Date(query.created_after) } } : {},
        query.created_before ? { createdAt: { lt: new Date(query.created_before) } } : {},
      ]
      const rows = await db.run.findMany({ ...pageQuery(query.limit, query.cursor, filters), select })
      return toPage(rows, query.limit, toDto)
    },
    /**
     * Moves a run to `to` only from one of `from`; returns the updated run, or null when the run was
     * not in one of those statuses (the caller decides what that means).
     */
    async transition(id: string, from: readonly RunStatus[], to: RunStatus, change: RunStatusChange = {}) {
      const data: Prisma.RunUpdateManyMutationInput = {
        status: to,
        ...change,
        error:
          change.error === undefined
            ? undefined
            : change.error === null
              ? Prisma.DbNull
              : (storableJson(change.error) as Prisma.InputJsonValue),
      }
      const { count } = await db.run.updateMany({ where: { id, status: { in: [...from] } }, data })
      return count === 1 ? this.findById(id) : null
    },
    async countActiveByApiKey(apiKeyId: string, statuses: readonly RunStatus[]): Promise<number> {
      return db.run.count({ where: { apiKeyId, status: { in: [...statuses] } } })
    },
    async countByModel(modelId: string): Promise<number> {
      return db.run.count({ where: { modelId } })
    },
    async countUsingDataset(datasetId: string): Promise<number> {
      return db.run.count({ where: { datasetIds: { has: datasetId } } })
    },
    /** Sum of current_step over running runs: the Prometheus steps/s gauge differentiates it. */
    async sumRunningSteps(): Promise<number> {
      const r = await db.run.aggregate({ where: { status: 'running' }, _sum: { currentStep: true } })
      return r._sum.currentStep ?? 0
    },
    async countByStatus(): Promise<Record<string, number>> {
      const groups = await db.run.groupBy({ by: ['status'], _count: { _all: true } })
      return Object.fromEntries(groups.map((g) => [g.status, g._count._all]))
    },
    /**
     * Takes a run for `workerId`: a queued run nobody holds, or a running/cancelling one whose worker
     * stopped heartbeating before `staleBefore` (it died; this attempt resumes it). Null when taken.
     */
    async claim(id: string, workerId: string, staleBefore: Date): Promise<RunDto | null> {
      const now = new Date()
      const { count } = await db.run.updateMany({
        where: {
          id,
          OR: [
            { status: 'queued', workerId: null },
            {
              status: { in: ['running', 'cancelling'] },
              OR: [{ heartbeatAt: { lt: staleBefore } }, { heartbeatAt: null }],
            },
          ],
        },
        data: { workerId, heartbeatAt: now, attempt: { increment: 1 } },
      })
      if (count === 0) return null
      await notifyResourceChange(db, { run_id: id, row: true })
      return this.findById(id)
    },
    async setMlflowRunId(id: string, mlflowRunId: string): Promise<void> {
      await db.run.update({ where: { id }, data: { mlflowRunId } })
      await notifyResourceChange(db, { run_id: id, row: true })
    },
    /** Lets go of a run this worker holds (paused or finished), so another attempt can take it. */
    async release(id: string, workerId: string): Promise<void> {
      const { count } = await db.run.updateMany({ where: { id, workerId }, data: { workerId: null } })
      if (count > 0) await notifyResourceChange(db, { run_id: id, row: true })
    },
    /** Records liveness and progress of the worker holding the run; false when it no longer holds it. */
    async heartbeat(id: string, workerId: string, currentStep: number): Promise<boolean> {
      const { count } = await db.run.updateMany({
        where: { id, workerId },
        data: { heartbeatAt: new Date(), currentStep },
      })
      if (count > 0) await notifyResourceChange(db, { run_id: id, row: true })
      return count > 0
    },
    /** Runs in `statuses` whose worker has not reported since `before` (crashed or never picked up). */
    async listStale(statuses: readonly RunStatus[], before: Date, limit = 100): Promise<RunDto[]> {
      const rows = await db.run.findMany({
        where: {
          status: { in: [...statuses] },
          OR: [{ heartbeatAt: { lt: before } }, { heartbeatAt: null, createdAt: { lt: before } }],
        },
        take: limit,
        select,
      })
      return rows.map(toDto)
    },
  }
}
export type RunsRepository = ReturnType<typeof createRunsRepository>
