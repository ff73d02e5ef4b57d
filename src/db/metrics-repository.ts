import type { MetricSeries, MetricsQuery } from '../schemas/runs.ts'
import { type Db, Prisma } from './client.ts'

export interface MetricRow {
  runId: string
  key: string
  step: number
  value: number
  iteration?: number | null
}

export function createMetricsRepository(db: Db) {
  /**
   * Equal-width step buckets (about `maxPoints` over the selected range), each the mean of its
   * values at its last step. The range comes first, in a materialized CTE (so the planner evaluates
   * it once): the least and greatest step of each selected key, two probes of the primary-key index
   * per key; then one grouped scan, no sort or window. Width is ceil((hi - lo + 1) / maxPoints),
   * written in integer division.
   */
  function downsampled(
    runId: string,
    keys: Prisma.Sql,
    range: Prisma.Sql,
    where: Prisma.Sql,
    maxPoints: number,
  ) {
    return Prisma.sql`
      WITH b AS MATERIALIZED (
        SELECT min(r.lo) AS lo, (max(r.hi) - min(r.lo)) / ${maxPoints}::int + 1 AS width
        FROM ${keys} AS k(key),
          LATERAL (SELECT min(step) AS lo, max(step) AS hi FROM metrics
                   WHERE run_id = ${runId}::uuid AND key = k.key ${range}) r)
      SELECT key, max(step)::int AS step, avg(value)::float8 AS value FROM metrics, b WHERE ${where}
      GROUP BY key, (step - b.lo) / b.width`
  }

  return {
    /** Batch insert; rows already stored for (run, key, step) are kept as they are (idempotent resume). */
    async createMany(rows: MetricRow[]): Promise<number> {
      if (rows.length === 0) return 0
      const { count } = await db.metric.createMany({ data: rows, skipDuplicates: true })
      return count
    },
    /** The (step, key) pairs stored for the run from `fromStep` on: what a resumed attempt already wrote. */
    async storedFrom(runId: string, fromStep: number): Promise<{ step: number; key: string }[]> {
      return db.metric.findMany({
        where: { runId, step: { gte: fromStep } },
        select: { step: true, key: true },
      })
    },
    /** The latest value of each of `keys` in every running run. */
    async latestOfRunning(keys: readonly string[]): Promise<{ runId: string; key: string; value: number }[]> {
      if (keys.length === 0) return []
      return db.$queryRaw<{ runId: string; key: string; value: number }[]>`
        SELECT DISTINCT ON (m.run_id, m.key) m.run_id::text AS "runId", m.key, m.value
        FROM metrics m JOIN runs r ON r.id = m.run_id
        WHERE r.status = 'running' AND m.key IN (${Prisma.join([...keys])})
        ORDER BY m.run_id, m.key, m.step DESC`
    },
    /**
     * Series per key within a step range, optionally averaged into at most `max_points` buckets each.
     * Postgres writes each series' points as one JSON array: one row per key to decode, not one per point.
     */
    async history(runId: string, q: MetricsQuery): Promise<MetricSeries[]> {
      const named = q.keys
        ?.split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '')
      const keys = named && named.length > 0 ? named : null
      const from = q.step_from === undefined ? Prisma.empty : Prisma.sql`AND step >= ${q.step_from}`
      const to = q.step_to === undefined ? Prisma.empty : Prisma.sql`AND step <= ${q.step_to}`
      const range = Prisma.sql`${from} ${to}`
      const where = Prisma.sql`run_id = ${runId}::uuid ${keys ? Prisma.sql`AND key IN (${Prisma.join(keys)})` : Prisma.empty} ${range}`
      // Every key of the run when none is named.
      const selectedKeys = keys
        ? Prisma.sql`unnest(${keys}::text[])`
        : Prisma.sql`(SELECT DISTINCT key FROM metrics WHERE run_id = ${runId}::uuid)`
      const points = q.max_points
        ? downsampled(runId, selectedKeys, range, where, q.max_points)
        : Prisma.sql`SELECT key, step, value FROM metrics WHERE ${where}`
      const rows = await db.$queryRaw<{ key: string; points: string }[]>`
        SELECT key, json_agg(json_build_array(step, value) ORDER BY step)::text AS points
        FROM (${points}) p GROUP BY key ORDER BY key`
      return rows.map((r) => ({ key: r.key, points: JSON.parse(r.points) }))
    },
  }
}
export type MetricsRepository = ReturnType<typeof createMetricsRepository>
