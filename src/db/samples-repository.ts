import { randomUUID } from 'node:crypto'
import type { SampleDto, SamplesQuery } from '../schemas/runs.ts'
import type { Db, Prisma } from './client.ts'
import { notifyResourceChange } from './resource-changes.ts'
import { storableJson } from './storable.ts'

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
export type SamplesRepository = ReturnType<typeof createSamplesRepository>
