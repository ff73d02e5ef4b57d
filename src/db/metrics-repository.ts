import type { MetricSeries, MetricsQuery } from '../schemas/runs.ts'
import { type Db, Prisma } from './client.ts'

export interface MetricRow {
  runId: string
  key: string
  step: number
  value: number
  iteration?: number | null
}

type Point = { key: string; step: number; value: number }

export function createMetricsRepository(db: Db) {
  /**
   * Equal-width step buckets (about `maxPoints` over the selected range), each the mean of its
   * values at its last step. One statement: the range comes from the primary-key index in a
   * materialized CTE (so the planner evaluates it once), then one grouped scan, no sort or window.
   * Width is ceil((hi - lo + 1) / maxPoints), written in integer division.
   */
  async function downsampled(where: Prisma.Sql, maxPoints: number): Promise<Point[]> {
    return db.$queryRaw<Point[]>`
      WITH b AS MATERIALIZED (
        SELECT min(step) AS lo, (max(step) - min(step)) / ${maxPoints}::int + 1 AS width FROM metrics WHERE ${where})
      SELECT key, max(step)::int AS step, avg(value)::float8 AS value FROM metrics, b WHERE ${where}
      GROUP BY key, (step - b.lo) / b.width ORDER BY key, step`
  }

  return {
    /** Batch insert; rows already stored for (run, key, step) are kept as they are (idempotent resume). */
    async createMany(rows: MetricRow[]): Promise<number> {
      if (rows.length === 0) return 0
      const { count } = await db.metric.createMany({ data: rows, skipDuplicates: true })
      return count
    },
    /** Series per key within a step range, optionally averaged into at most `max_points` buckets each. */
    async history(runId: string, q: MetricsQuery): Promise<MetricSeries[]> {
      const keys = q.keys
        ?.split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '')
      const filters = [Prisma.sql`run_id = ${runId}::uuid`]
      if (keys && keys.length > 0) filters.push(Prisma.sql`key IN (${Prisma.join(keys)})`)
      if (q.step_from !== undefined) filters.push(Prisma.sql`step >= ${q.step_from}`)
      if (q.step_to !== undefined) filters.push(Prisma.sql`step <= ${q.step_to}`)
      const where = Prisma.join(filters, ' AND ')
      const rows = q.max_points
        ? await downsampled(where, q.max_points)
        : await db.$queryRaw<Point[]>`
            SELECT key, step, value FROM metrics WHERE ${where} ORDER BY key, step`
      const series = new Map<string, [number, number][]>()
      for (const r of rows) {
        const points = series.get(r.key) ?? []
        if (points.length === 0) series.set(r.key, points)
        points.push([r.step, r.value])
      }
      return [...series].map(([key, points]) => ({ key, points }))
    },
  }
}
export type MetricsRepository = ReturnType<typeof createMetricsRepository>
