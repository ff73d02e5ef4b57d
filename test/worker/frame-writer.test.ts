/**
 * The worker's frame writer against real Postgres: its flushes and the API's status changes write to
 * the same run row and stream, concurrently.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { PrismaClient } from '../../src/db/client.ts'
import { createRepositories } from '../../src/db/repositories.ts'
import { appendRunFrames } from '../../src/db/run-frames.ts'
import { FrameWriter } from '../../src/worker/frame-writer.ts'
import { buildTestApp, insertTinyRun } from '../helpers/build-app.ts'
import { stopEmbeddedServer, testLog } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

async function someoneWaitsOnALock(prisma: PrismaClient): Promise<true | undefined> {
  const [{ waiting }] = await prisma.$queryRaw<{ waiting: number }[]>`
    SELECT count(*)::int AS waiting FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`
  return waiting > 0 ? true : undefined
}

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
      writer.push({ type: 'metrics', step: 1, data: { values: { loss: 0.5 } } }, [
        { runId: run.id, key: 'loss', step: 1, value: 0.5, iteration: 1 },
      ])
      const flushed = writer.flush()
      await until(() => someoneWaitsOnALock(app.prisma), 'the flush to wait on the run row', 10_000)
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
