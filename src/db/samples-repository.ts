import { randomUUID } from 'node:crypto'
import type { SampleDto, SamplesQuery } from '../schemas/runs.ts'
import type { Db, Prisma } from './client.ts'
import { notifyResourceChange } from './resource-changes.ts'

export function createSamplesRepository(db: Db) {
  return {
    async createMany(runId: string, iteration: number, records: Record<string, unknown>[]): Promise<number> {
      const { count } = await db.sample.createMany({
        data: records.map((record, index) => ({
          id: randomUUID(),
          runId,
          iteration,
          index,
          record: storableJson(record) as Prisma.InputJsonValue,
        })),
        skipDuplicates: true,
      })
      if (count > 0) await notifyResourceChange(db, { run_id: runId, row: false })
      return count
    },
    async list(runId: string, q: SamplesQuery & { limit: number; offset: number }): Promise<SampleDto[]> {
      const rows = await db.sample.findMany({
        where: { runId, ...(q.iteration === undefined ? {} : { iteration: q.iteration }) },
        orderBy: [{ iteration: 'asc' }, { index: 'asc' }],
        skip: q.offset,
        take: q.limit,
        select: { iteration: true, index: true, record: true },
      })
      return rows.map((r) => ({
        iteration: r.iteration,
        index: r.index,
        record: r.record as Record<string, unknown>,
      }))
    },
  }
}
/**
 * Postgres text and jsonb cannot hold U+0000, which sampled text from a small model can contain:
 * it is stored as U+FFFD (the replacement character) so the records are kept instead of refused.
 */
function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('\u0000', '\uFFFD')
  if (Array.isArray(value)) return value.map(storableJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, storableJson(v)]))
  }
  return value
}

export type SamplesRepository = ReturnType<typeof createSamplesRepository>
