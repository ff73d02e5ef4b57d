/**
 * Runs survive their worker: a worker that shuts down checkpoints and requeues its run, and the next
 * worker resumes from that checkpoint; a run held by a worker that stopped heartbeating can be claimed
 * by another, while a live worker's run cannot.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createWorker, requeueOrphans } from '../../src/worker/main.ts'
import { buildTestApp, insertTinyRun, startTestWorker } from '../helpers/build-app.ts'
import { createTinyRun, uploadDataset, uploadQueries } from '../helpers/datasets.ts'
import { stopEmbeddedServer, testLog } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

test('claiming: a stale holder is taken over, a live one is not', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const run = await insertTinyRun(app.repos)
  const first = await app.repos.runs.claim(run.id, 'worker-a', new Date(Date.now() - 20_000))
  assert.equal(first?.attempt, 1)
  await app.repos.runs.transition(run.id, ['queued'], 'running')
  assert.equal(
    await app.repos.runs.claim(run.id, 'worker-b', new Date(Date.now() - 20_000)),
    null,
    'worker-a is alive',
  )
  // worker-a dies: its heartbeat ages past the threshold.
  const taken = await app.repos.runs.claim(run.id, 'worker-b', new Date(Date.now() + 1000))
  assert.equal(taken?.worker_id, 'worker-b')
  assert.equal(taken?.attempt, 2)
  assert.equal(taken?.status, 'running')
})

test('a worker shutting down requeues its run; the next worker resumes from the checkpoint', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  const workerOptions = {
    config: app.config,
    prisma: app.prisma,
    boss: app.boss,
    log: testLog,
    heartbeatMs: 500,
    pollingIntervalSeconds: 0.5,
  }
  const queriesId = await uploadQueries(app, ['Say hi.', 'Name a tree.', 'Count to two.', 'Greet me.'])
  const created = await createTinyRun(app, {
    dataset_ids: [queriesId],
    device: 'cpu',
    seed: 3,
    hyperparameters: {
      iterations: 10,
      batch_size: 2,
      lr: 1e-3,
      max_new_tokens: 4,
      generation_batch_size: 4,
      checkpoint_every: 1,
    },
  })
  const runId = created.json().id
  const workerA = await createWorker(workerOptions)
  await until(
    async () => ((await app.repos.checkpoints.findLatest(runId)) ? true : undefined),
    'a first checkpoint',
  )
  await workerA.stop()
  const requeued = await app.repos.runs.findById(runId)
  assert.equal(requeued?.status, 'queued')
  assert.equal(requeued?.worker_id, null)
  const checkpoint = (await app.repos.checkpoints.findLatest(runId))!

  const workerB = await createWorker(workerOptions)
  app.onClose(() => workerB.stop())
  const resumed = await until(
    async () => {
      const r = await app.repos.runs.findById(runId)
      return r && r.attempt >= 2 && r.current_step > checkpoint.step ? r : undefined
    },
    'progress past the checkpoint on the second attempt',
    120_000,
  )
  assert.equal(resumed.worker_id, workerB.id)
  const events = await app.repos.events.listAfter(runId, 0, 10_000)
  const statuses = events.filter((e) => e.type === 'status').map((e) => e.data.status)
  assert.deepEqual(statuses.slice(0, 4), ['queued', 'running', 'queued', 'running'])
  const steps = events.filter((e) => e.type === 'metrics').map((e) => e.step)
  assert.deepEqual(
    steps,
    [...steps].sort((a, b) => a - b),
    'metrics frames never go back in steps after the resume',
  )
})

test('the orphan sweep gives a run whose worker vanished a new job, and a worker resumes it', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  const queriesId = await uploadDataset(app, 'queries')
  const run = await insertTinyRun(app.repos, {
    datasetIds: [queriesId],
    hyperparameters: { iterations: 1, batch_size: 2, max_new_tokens: 3, generation_batch_size: 2 },
  })
  // A worker took it and died; its job is gone (no job was ever queued for this row).
  await app.repos.runs.claim(run.id, 'vanished-worker', new Date())
  await app.repos.runs.transition(run.id, ['queued'], 'running')
  await app.prisma.run.update({
    where: { id: run.id },
    data: { heartbeatAt: new Date(Date.now() - 600_000) },
  })
  await startTestWorker(app)
  assert.equal(await requeueOrphans({ prisma: app.prisma, boss: app.boss, log: testLog }, 60_000), 1)
  const done = await until(async () => {
    const r = await app.repos.runs.findById(run.id)
    return r?.status === 'succeeded' ? r : undefined
  }, 'the orphan to be trained to the end')
  assert.equal(done.attempt, 2)
})

test('an attempt whose run another attempt took over stops and records nothing', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  const queriesId = await uploadQueries(app, ['Say hi.', 'Name a tree.', 'Count to two.', 'Greet me.'])
  const created = await createTinyRun(app, {
    dataset_ids: [queriesId],
    device: 'cpu',
    hyperparameters: {
      iterations: 20,
      batch_size: 2,
      max_new_tokens: 4,
      generation_batch_size: 4,
      checkpoint_every: 1,
    },
  })
  const runId = created.json().id
  await startTestWorker(app, { heartbeatMs: 200 })
  await until(
    async () => ((await app.repos.checkpoints.findLatest(runId)) ? true : undefined),
    'a first checkpoint',
  )
  // Another worker claims the run, as when this one was silent long enough to be taken for dead.
  await app.prisma.run.update({
    where: { id: runId },
    data: { workerId: 'other-worker', attempt: { increment: 1 } },
  })
  await until(async () => {
    const [job] = await app.prisma.$queryRaw<{ state: string }[]>`
      SELECT state::text FROM pgboss.job WHERE data->>'runId' = ${runId}`
    return job?.state === 'completed' ? true : undefined
  }, 'the first attempt to end')
  const run = await app.repos.runs.findById(runId)
  assert.equal(run?.status, 'running', 'the first attempt recorded no outcome')
  assert.equal(run?.worker_id, 'other-worker')
  const statuses = (await app.repos.events.listAfter(runId, 0, 100_000, 'status')).map((f) => f.data.status)
  assert.deepEqual(statuses, ['queued', 'running'])
})
