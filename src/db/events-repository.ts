import type { RunEventDto } from '../schemas/runs.ts'
import type { Db, Prisma } from './client.ts'
import { storableJson } from './storable.ts'

const select = { seq: true, type: true, step: true, data: true, createdAt: true } as const
type Row = { seq: number; type: string; step: number; data: Prisma.JsonValue; createdAt: Date }

function toDto(r: Row): RunEventDto {
  return {
    seq: r.seq,
    type: r.type,
    step: r.step,
    data: r.data as Record<string, unknown>,
    created_at: r.createdAt.toISOString(),
  }
}

export interface EventInsert {
  seq: number
  type: string
  step: number
  data: Record<string, unknown>
  createdAt: Date
}

export function createEventsRepository(db: Db) {
  return {
    /** Appends frames with seqs the caller assigned (one writer per run: the worker holding it). */
    async createMany(runId: string, events: EventInsert[]): Promise<void> {
      if (events.length === 0) return
      await db.runEvent.createMany({
        data: events.map((e) => ({ runId, ...e, data: storableJson(e.data) as Prisma.InputJsonValue })),
      })
    },
    async listAfter(runId: string, afterSeq: number, limit: number, type?: string): Promise<RunEventDto[]> {
      const rows = await db.runEvent.findMany({
        where: { runId, seq: { gt: afterSeq }, ...(type ? { type } : {}) },
        orderBy: { seq: 'asc' },
        take: limit,
        select,
      })
      return rows.map(toDto)
    },
    async maxSeq(runId: string): Promise<number> {
      const r = await db.runEvent.aggregate({ where: { runId }, _max: { seq: true } })
      return r._max.seq ?? 0
    },
    /** The seq after which frames follow step `sinceStep`'s metrics frame. */
    async seqAfterStep(runId: string, sinceStep: number): Promise<number> {
      const r = await db.runEvent.aggregate({
        where: { runId, type: 'metrics', step: { lte: sinceStep } },
        _max: { seq: true },
      })
      return r._max.seq ?? 0
    },
  }
}
export type EventsRepository = ReturnType<typeof createEventsRepository>
