/**
 * A database outage in the middle of a run, on a PostgreSQL server of the test's own that it stops for
 * 20 s and starts again: the trainer waits between steps, nothing it produced is lost, and the run
 * either carries on (outage within the budget) or checkpoints and is queued again (beyond it).
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { runOutputDir } from '../../src/config.ts'
import { buildTestApp, startTestWorker, type TestApp } from '../helpers/build-app.ts'
import { createInterruptibleRun } from './interruptible-run.ts'
import { type RestartablePostgres, startRestartablePostgres } from './restartable-postgres.ts'
import { assertRunRecordWhole, finishedRun } from './run-record.ts'
import { until } from './until.ts'

const OUTAGE_MS = 20_000
const ITERATIONS = 3
/** Every wait inside has its own bound; this one stops a test that hangs anyway. */
const TEST_TIMEOUT_MS = 12 * 60_000

let server: RestartablePostgres | undefined
after(() => server?.remove())

/** Two epochs of short generations: most of the run's time is training, when the outage hits. */
const startRun = (app: TestApp) =>
  createInterruptibleRun(app, {
    iterations: ITERATIONS,
    seed: 5,
    hyperparameters: { epochs: 2, max_new_tokens: 4, generation_batch_size: 4 },
  })

/** Checkpoint folders the trainer has written so far: it writes them whether or not Postgres is up. */
async function checkpointFolders(app: TestApp, runId: string): Promise<number> {
  const dir = path.join(runOutputDir(app.config, runId), 'checkpoints')
  return (await readdir(dir).catch(() => [])).filter((f) => f.startsWith('step-')).length
}

/**
 * Stops the server once the run has trained a few steps, and starts it again OUTAGE_MS later.
 * Returns the checkpoint folders written meanwhile.
 */
async function outageMidRun(app: TestApp, runId: string): Promise<number> {
  await until(
    async () => {
      const step = await app.prisma.metric.findFirst({
        where: { runId, key: 'learning_rate', step: { gte: 3 } },
      })
      return step ?? undefined
    },
    'a few trained steps',
    180_000,
  )
  await server!.stop()
  const before = await checkpointFolders(app, runId)
  await sleep(OUTAGE_MS)
  const during = (await checkpointFolders(app, runId)) - before
  await server!.start()
  return during
}

test('within the outage budget the run waits for the database and carries on, losing nothing', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  server ??= await startRestartablePostgres()
  const app = await buildTestApp(t, { server: server.url }, { env: { EXECUTION_PROVIDER: 'cpu' } })
  const runId = await startRun(app)
  await startTestWorker(app, { heartbeatMs: 500 })
  const checkpointedDuringOutage = await outageMidRun(app, runId)
  // Unheld, the trainer would train (and checkpoint every 2 steps) through the outage; held, it
  // stops before its next step, at most finishing the checkpoint or iteration end it was in.
  assert.ok(
    checkpointedDuringOutage <= 2,
    `${checkpointedDuringOutage} checkpoints written during the outage`,
  )

  const run = await finishedRun(app, runId)
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error))
  assert.equal(run.attempt, 1, 'the attempt waited instead of being replaced')
  const statuses = (await app.repos.events.listAfter(runId, 0, 100_000, 'status')).map((f) => f.data)
  const resumed = statuses.find((s) => s.resumed_after_outage_ms !== undefined)
  assert.ok(resumed, 'a status frame says training resumed after the outage')
  assert.equal(resumed.status, 'running')
  assert.ok((resumed.resumed_after_outage_ms as number) > 0)
  await assertRunRecordWhole(app, runId, ITERATIONS)
})

test('beyond the outage budget the run checkpoints, is queued again and resumes, losing nothing', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  server ??= await startRestartablePostgres()
  const app = await buildTestApp(
    t,
    { server: server.url },
    { env: { EXECUTION_PROVIDER: 'cpu', DB_OUTAGE_BUDGET_SECONDS: '5' } },
  )
  const runId = await startRun(app)
  await startTestWorker(app, { heartbeatMs: 500 })
  await outageMidRun(app, runId)

  const run = await finishedRun(app, runId)
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error))
  assert.equal(run.attempt, 2, 'a second attempt finished the run')
  const frames = await app.repos.events.listAfter(runId, 0, 100_000)
  const warning = frames.findIndex(
    (f) => f.type === 'warning' && /outage budget/.test(f.data.message as string),
  )
  assert.ok(warning > 0, 'a warning says the budget was exceeded')
  const after = frames
    .slice(warning)
    .filter((f) => f.type === 'status' && f.data.resumed_after_outage_ms === undefined)
  assert.deepEqual(
    after.slice(0, 2).map((f) => [f.data.status, f.data.requeued ?? f.data.attempt]),
    [
      ['queued', true],
      ['running', 2],
    ],
  )
  const checkpoints = await app.repos.checkpoints.listByRun(runId)
  const requeuedAt = after[1].data.resumed_from_step as number
  assert.ok(
    checkpoints.some((c) => c.step === requeuedAt && requeuedAt > 0),
    'the second attempt resumed from the checkpoint written when the budget ran out',
  )
  await assertRunRecordWhole(app, runId, ITERATIONS)
})
