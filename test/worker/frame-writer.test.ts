/**
 * The worker's frame writer against real Postgres: its flushes and the API's status changes write to
 * the same run row and stream, concurrently.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PrismaClient } from '../../src/db/client.ts'
import type { MetricRow } from '../../src/db/metrics-repository.ts'
import { createRepositories } from '../../src/db/repositories.ts'
import { appendRunFrames, type NewFrame } from '../../src/db/run-frames.ts'
import { FrameWriter } from '../../src/worker/frame-writer.ts'
import { buildTestApp, insertTinyRun } from '../helpers/build-app.ts'
import { stopEmbeddedServer, testLog } from '../helpers/db.ts'
import { type RestartablePostgres, startRestartablePostgres } from './restartable-postgres.ts'
import { until } from './until.ts'

let server: RestartablePostgres | undefined
after(async () => {
  await stopEmbeddedServer()
  await server?.remove()
})

/** The backend of this database waiting on a lock, if one is. */
async function waitingOnALock(prisma: PrismaClient): Promise<number | undefined> {
  const rows = await prisma.$queryRaw<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
  return rows[0]?.pid
}

const lossAt = (runId: string, step: number): [NewFrame, MetricRow[]] => [
  { type: 'metrics', step, data: { values: { loss: 0.5 } } },
  [{ runId, key: 'loss', step, value: 0.5, iteration: 1 }],
]

test('a metrics flush arriving in the middle of a status change waits for it instead of deadlocking', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const run = await insertTinyRun(app.repos)
  const writer = new FrameWriter(app.prisma, run.id, testLog)

  // A status change as the API makes one: the run row updated, then its status frame appended. The
  // flush starts in between and must block on the run row without holding a lock the change needs.
  const { flushed } = await app.prisma.$transaction(
    async (tx) => {
      const paused = await createRepositories(tx).runs.transition(run.id, ['queued'], 'paused')
      assert.ok(paused)
      writer.push(...lossAt(run.id, 1))
      const flushed = writer.flush()
      await until(() => waitingOnALock(app.prisma), 'the flush to wait on the run row', 10_000)
      await appendRunFrames(tx, run.id, [{ type: 'status', step: 0, data: { status: 'paused' } }])
      return { flushed }
    },
    { timeout: 20_000 },
  )
  await flushed

  const frames = await app.repos.events.listAfter(run.id, 0, 10)
  assert.deepEqual(
    frames.map((f) => [f.seq, f.type]),
    [
      [1, 'status'],
      [2, 'metrics'],
    ],
  )
  assert.equal((await app.repos.metrics.history(run.id, { keys: 'loss' }))[0].points.length, 1)
})

test('a flush whose connection is killed is written again, once', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const run = await insertTinyRun(app.repos)
  const writer = new FrameWriter(app.prisma, run.id, testLog)

  // The flush waits on the run row held here; its server process is then terminated, as a restart
  // or a dropped connection would end it, before the lock is let go.
  const { flushed } = await app.prisma.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT 1 FROM runs WHERE id = ${run.id}::uuid FOR UPDATE`
      writer.push(...lossAt(run.id, 1))
      const flushed = writer.flush()
      const pid = await until(() => waitingOnALock(app.prisma), 'the flush to wait on the run row', 10_000)
      await app.prisma.$queryRaw`SELECT pg_terminate_backend(${pid}::int)`
      return { flushed }
    },
    { timeout: 20_000 },
  )
  await flushed
  writer.push(...lossAt(run.id, 2))
  await writer.flush()

  const frames = await app.repos.events.listAfter(run.id, 0, 10)
  assert.deepEqual(
    frames.map((f) => [f.seq, f.step]),
    [
      [1, 1],
      [2, 2],
    ],
  )
  assert.deepEqual(
    (await app.repos.metrics.history(run.id, { keys: 'loss' }))[0].points.map((p) => p[0]),
    [1, 2],
  )
})

test('while the database is down, batches are kept and written once it is back', async (t) => {
  server = await startRestartablePostgres()
  const app = await buildTestApp(t, { server: server.url })
  const run = await insertTinyRun(app.repos)
  const outages: number[] = []
  const writer = new FrameWriter(app.prisma, run.id, testLog, (ms) => outages.push(ms))
  writer.push(...lossAt(run.id, 1))
  await writer.flush()
  assert.equal(writer.outageMs(), 0)

  await server.stop()
  writer.push(...lossAt(run.id, 2))
  const flushed = writer.flush()
  await until(
    async () => (writer.outageMs() > 0 ? true : undefined),
    'the writer to notice the outage',
    10_000,
  )
  writer.push(...lossAt(run.id, 3))
  await sleep(3000)
  assert.ok(writer.outageMs() >= 2000, 'still waiting')
  await server.start()
  await flushed
  await writer.flush()

  assert.equal(writer.outageMs(), 0)
  assert.equal(outages.length, 1, 'one reconnection reported')
  const frames = await app.repos.events.listAfter(run.id, 0, 10)
  assert.deepEqual(
    frames.map((f) => [f.seq, f.step]),
    [
      [1, 1],
      [2, 2],
      [3, 3],
    ],
  )
  assert.deepEqual(
    (await app.repos.metrics.history(run.id, { keys: 'loss' }))[0].points.map((p) => p[0]),
    [1, 2, 3],
  )
})
