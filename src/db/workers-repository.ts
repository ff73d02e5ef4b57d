import type { WorkerDto, WorkerState } from '../schemas/workers.ts'
import type { Db } from './client.ts'

/** How often a worker records that it is alive. */
export const WORKER_HEARTBEAT_MS = 10_000
/** A worker silent this long without having stopped is taken for dead. */
const LOST_AFTER_MS = 3 * WORKER_HEARTBEAT_MS
/** Stopped and lost workers stay listed (with `all`) this long; older rows are removed. */
const KEEP_MS = 24 * 3600 * 1000

export interface WorkerInsert {
  id: string
  hostname: string
  pid: number
  devices: string[]
  concurrency: number
}

type Row = WorkerInsert & { startedAt: Date; heartbeatAt: Date; stoppedAt: Date | null }

/** Workers that have not stopped and heartbeat within LOST_AFTER_MS. */
const live = () => ({ stoppedAt: null, heartbeatAt: { gte: new Date(Date.now() - LOST_AFTER_MS) } })

function stateOf(r: Row, now: number): WorkerState {
  if (r.stoppedAt) return 'stopped'
  return now - r.heartbeatAt.getTime() > LOST_AFTER_MS ? 'lost' : 'live'
}

export function createWorkersRepository(db: Db) {
  return {
    /** Records a starting worker, and forgets workers gone for longer than a day. */
    async register(worker: WorkerInsert): Promise<void> {
      await db.worker.deleteMany({ where: { heartbeatAt: { lt: new Date(Date.now() - KEEP_MS) } } })
      await db.worker.create({ data: worker })
    },
    async heartbeat(id: string): Promise<void> {
      await db.worker.updateMany({ where: { id, stoppedAt: null }, data: { heartbeatAt: new Date() } })
    },
    async stopped(id: string): Promise<void> {
      await db.worker.updateMany({ where: { id }, data: { stoppedAt: new Date() } })
    },
    /** How many live workers serve `device`. */
    async countServing(device: string): Promise<number> {
      return db.worker.count({
        where: { ...live(), devices: { has: device } },
      })
    },
    /** Live workers, oldest first; with `all`, also those that stopped or were lost within a day. */
    async list(all: boolean): Promise<WorkerDto[]> {
      const now = Date.now()
      const rows: Row[] = await db.worker.findMany({
        where: all ? { heartbeatAt: { gte: new Date(now - KEEP_MS) } } : live(),
        orderBy: [{ startedAt: 'asc' }, { id: 'asc' }],
      })
      const held = await db.run.findMany({
        where: { workerId: { in: rows.map((r) => r.id) } },
        select: { id: true, workerId: true },
        orderBy: { createdAt: 'asc' },
      })
      return rows.map((r) => ({
        id: r.id,
        hostname: r.hostname,
        pid: r.pid,
        devices: r.devices,
        concurrency: r.concurrency,
        state: stateOf(r, now),
        run_ids: held.filter((h) => h.workerId === r.id).map((h) => h.id),
        started_at: r.startedAt.toISOString(),
        heartbeat_at: r.heartbeatAt.toISOString(),
        stopped_at: r.stoppedAt?.toISOString() ?? null,
      }))
    },
  }
}
