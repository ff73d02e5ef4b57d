/**
 * A worker process interrupted in the middle of a run: killed with SIGKILL (mid-training, and while it
 * generates), a live worker takes the run over within the takeover bound and says so on the stream
 * with a `status` frame; stopped with SIGTERM, it checkpoints and hands the run back. Either way the
 * run finishes from its last checkpoint with nothing lost, per-iteration metrics included.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { JOB_HEARTBEAT_SECONDS, SUPERVISE_SECONDS } from '../../src/queue/boss.ts'
import { TRAIN_RUN_QUEUE } from '../../src/queue/jobs.ts'
import type { RunEventDto } from '../../src/schemas/runs.ts'
import type { Worker } from '../../src/worker/main.ts'
import { buildTestApp, startTestWorker, type TestApp } from '../helpers/build-app.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'
import { createInterruptibleRun } from './interruptible-run.ts'
import { assertRunRecordWhole, finishedRun } from './run-record.ts'
import { until } from './until.ts'
import { spawnWorker, type WorkerProcess } from './worker-process.ts'

after(stopEmbeddedServer)

/** What the issue asks of a takeover, in seconds. */
const TAKEOVER_TARGET_S = 15
/** The bound asserted on a shared, loaded test machine. */
const TAKEOVER_BOUND_MS = 90_000
const ITERATIONS = 3
/** Every wait inside has its own bound; this one stops a test that hangs anyway. */
const TEST_TIMEOUT_MS = 12 * 60_000
const POLLING_S = 0.5

async function frames(app: TestApp, runId: string): Promise<RunEventDto[]> {
  return app.repos.events.listAfter(runId, 0, 1_000_000)
}

/** In a training phase, with a checkpoint behind it. */
const midTraining = (fs: RunEventDto[]) =>
  fs.findLast((f) => f.type === 'phase')?.data.phase === 'training' &&
  fs.some((f) => f.type === 'checkpoint' && f.step >= 2)

/** Generating the second iteration's samples. */
const generatingSecond = (fs: RunEventDto[]) => {
  const ended = fs.findIndex((f) => f.type === 'iteration_end')
  return ended >= 0 && fs.slice(ended).some((f) => f.type === 'phase' && f.data.phase === 'generating')
}

/**
 * Starts a run on a worker process, then a live worker beside it, and `interrupt`s the process once
 * `when` holds for the run's frames. Returns the frames as they were then.
 */
async function interruptRun(
  app: TestApp,
  when: (frames: RunEventDto[]) => boolean,
  interrupt: (w: WorkerProcess) => Promise<void>,
): Promise<{ runId: string; live: Worker; before: RunEventDto[] }> {
  const runId = await createInterruptibleRun(app, { iterations: ITERATIONS, seed: 9 })
  const leaving = spawnWorker(app)
  await until(
    async () => ((await app.repos.runs.findById(runId))?.worker_id ? true : undefined),
    'the worker process to take the run',
    120_000,
  ).catch((e) => assert.fail(`${e.message}: ${leaving.output()}`))
  // The live worker starts only now, so that the process is the run's first.
  const live = await startTestWorker(app, { pollingIntervalSeconds: POLLING_S })
  await until(
    async () => (when(await frames(app, runId)) ? true : undefined),
    'the moment to interrupt',
    180_000,
  )
  await interrupt(leaving)
  return { runId, live, before: await frames(app, runId) }
}

async function finishesWhole(app: TestApp, runId: string): Promise<void> {
  const run = await finishedRun(app, runId)
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error))
  assert.equal(run.attempt, 2)
  await assertRunRecordWhole(app, runId, ITERATIONS)
}

/** Waits for the takeover's status frame and checks what it says. */
async function takenOver(
  t: { diagnostic(message: string): void },
  app: TestApp,
  runId: string,
  live: Worker,
): Promise<void> {
  const started = performance.now()
  const frame = await until(
    async () => (await frames(app, runId)).find((f) => f.type === 'status' && f.data.taken_over === true),
    'a status frame announcing the takeover',
    TAKEOVER_BOUND_MS,
  )
  t.diagnostic(`run taken over ${((performance.now() - started) / 1000).toFixed(1)} s after the kill`)
  const checkpoint = await app.repos.checkpoints.findLatest(runId)
  assert.deepEqual(frame.data, {
    status: 'running',
    attempt: 2,
    worker_id: live.id,
    resumed_from_step: checkpoint?.step ?? 0,
    taken_over: true,
  })
}

test('takeover settings fit the target: job heartbeat, supervision, retry delay and polling', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const queue = await app.boss.getQueue(TRAIN_RUN_QUEUE)
  assert.equal(queue?.heartbeatSeconds, JOB_HEARTBEAT_SECONDS)
  const worst = JOB_HEARTBEAT_SECONDS + SUPERVISE_SECONDS + (queue?.retryDelay ?? 0) + 1
  assert.ok(worst <= TAKEOVER_TARGET_S, `worst case ${worst} s`)
})

test('a worker killed mid-training: its run is taken over from the last checkpoint and finishes whole', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const { runId, live } = await interruptRun(app, midTraining, (w) => w.kill())
  await takenOver(t, app, runId, live)
  await finishesWhole(app, runId)
})

test('a worker killed while generating: the new attempt writes that iteration metrics', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const { runId, live, before } = await interruptRun(app, generatingSecond, (w) => w.kill())
  const iterationTwo = before.some((f) => f.type === 'metrics' && f.data.iteration === 2)
  assert.ok(!iterationTwo, 'killed before any metrics of iteration 2 were written')
  await takenOver(t, app, runId, live)
  await finishesWhole(app, runId)
})

test('a worker stopped with SIGTERM checkpoints and hands its run back; another finishes it whole', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const { runId, live, before } = await interruptRun(app, midTraining, (w) => w.kill('SIGTERM'))
  const requeued = before.find((f) => f.type === 'status' && f.data.requeued === true)
  assert.deepEqual(requeued?.data, { status: 'queued', requeued: true }, 'the run was handed back')
  const resumed = await until(
    async () => (await frames(app, runId)).find((f) => f.type === 'status' && f.data.attempt === 2),
    'the live worker to resume the run',
  )
  assert.deepEqual(resumed.data, {
    status: 'running',
    attempt: 2,
    worker_id: live.id,
    resumed_from_step: requeued!.step,
  })
  const checkpoints = await app.repos.checkpoints.listByRun(runId)
  assert.ok(
    checkpoints.some((c) => c.step === requeued!.step),
    'a checkpoint at the step the run was handed back at',
  )
  await finishesWhole(app, runId)
})
