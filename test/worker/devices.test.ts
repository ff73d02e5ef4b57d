/**
 * Device assignment: runs asking for a GPU provider wait in that device's queue, and a worker takes
 * from the queues of the devices it has, under one concurrency limit.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, test } from 'node:test'
import { PgBoss } from 'pg-boss'
import { providerStatuses } from '../../src/engine/index.ts'
import { TRAIN_RUN_QUEUE, trainQueueFor } from '../../src/queue/jobs.ts'
import { startJobPump } from '../../src/worker/job-pump.ts'
import { gpuDevicesServed } from '../../src/worker/main.ts'
import { buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { stopEmbeddedServer, testLog } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

test('the pump holds one limit over all its queues, takes the first queue first, and settles each job', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const cuda = trainQueueFor('cuda')
  const send = async (queue: string, runId: string) => ({
    queue,
    runId,
    id: (await app.boss.send(queue, { runId }))!,
  })
  const jobs = [
    await send(TRAIN_RUN_QUEUE, randomUUID()),
    await send(cuda, randomUUID()),
    await send(TRAIN_RUN_QUEUE, randomUUID()),
    await send(cuda, randomUUID()),
  ]
  const failing = jobs[2].runId
  const handled: string[] = []
  let inHand = 0
  let mostInHand = 0
  const pump = startJobPump({
    boss: app.boss,
    queues: [cuda, TRAIN_RUN_QUEUE],
    concurrency: 1,
    pollingIntervalMs: 200,
    log: testLog,
    async handle(runId) {
      mostInHand = Math.max(mostInHand, ++inHand)
      await new Promise((r) => setTimeout(r, 50))
      inHand--
      handled.push(runId)
      if (runId === failing) throw new Error('training failed')
    },
  })
  t.after(() => pump.stop())
  await until(async () => (handled.length === 4 ? true : undefined), 'four jobs handled', 20_000)
  assert.deepEqual(
    handled,
    [jobs[1], jobs[3], jobs[0], jobs[2]].map((j) => j.runId),
    'the first queue is emptied first, each queue in order',
  )
  assert.equal(mostInHand, 1)
  await pump.stop()
  const states = await Promise.all(jobs.map(async (j) => (await app.boss.getJobById(j.queue, j.id))?.state))
  assert.deepEqual(states, ['completed', 'completed', 'retry', 'completed'])
})

test('a job held longer than its heartbeat interval is kept alive by the pump, and completes', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  // pg-boss's own supervisor, checking every second, fails a silent job of a heartbeat queue.
  const boss = new PgBoss({
    connectionString: app.databaseUrl,
    schema: 'pgboss_heartbeat',
    superviseIntervalSeconds: 1,
    monitorIntervalSeconds: 1,
  } as ConstructorParameters<typeof PgBoss>[0])
  await boss.start()
  for (const queue of ['touched', 'silent']) {
    await boss.createQueue(queue, { heartbeatSeconds: 10, retryLimit: 0, expireInSeconds: 300 })
  }
  const touched = (await boss.send('touched', { runId: randomUUID() }))!
  const silent = (await boss.send('silent', { runId: randomUUID() }))!
  assert.equal((await boss.fetch('silent'))[0]?.id, silent)
  const pump = startJobPump({
    boss,
    queues: ['touched'],
    concurrency: 1,
    pollingIntervalMs: 100,
    log: testLog,
    handle: () => new Promise((r) => setTimeout(r, 14_000)),
  })
  try {
    await until(
      async () => ((await boss.getJobById('silent', silent))?.state === 'failed' ? true : undefined),
      'the silent job to be failed by pg-boss',
      30_000,
    )
    assert.equal((await boss.getJobById('touched', touched))?.state, 'active')
    await pump.stop()
    assert.equal((await boss.getJobById('touched', touched))?.state, 'completed')
  } finally {
    await pump.stop()
    await boss.stop({ graceful: false })
  }
})

test('a worker without a GPU trains the cpu run and leaves the webgpu run queued for a worker that has one', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  await startTestWorker(app)
  const hyperparameters = { iterations: 1, batch_size: 2, max_new_tokens: 3, generation_batch_size: 2 }
  const gpuRun = (await createTinyRun(app, { device: 'webgpu', hyperparameters })).json() as { id: string }
  const cpuRun = (await createTinyRun(app, { device: 'cpu', hyperparameters })).json() as { id: string }
  await until(
    async () => ((await app.repos.runs.findStatus(cpuRun.id)) === 'succeeded' ? true : undefined),
    'the cpu run to succeed',
  )
  assert.equal(await app.repos.runs.findStatus(gpuRun.id), 'queued')
  const warnings = async (runId: string) =>
    (await app.repos.events.listAfter(runId, 0, 100, 'warning')).map((e) => e.data.message)
  assert.deepEqual(await warnings(gpuRun.id), [
    'no live worker serves webgpu: the run waits until a worker with it starts (WORKER_DEVICES)',
  ])
  assert.deepEqual(await warnings(cpuRun.id), [])
  const waiting = await app.boss.fetch<{ runId: string }>(trainQueueFor('webgpu'))
  assert.deepEqual(
    waiting.map((j) => j.data.runId),
    [gpuRun.id],
  )
})

test('WORKER_DEVICES: cpu serves no GPU queue; a named GPU must work here or the worker does not start', async () => {
  assert.deepEqual(await gpuDevicesServed('cpu'), [])
  const cuda = (await providerStatuses()).find((s) => s.provider === 'cuda')!
  if (cuda.available) assert.deepEqual(await gpuDevicesServed('cpu,cuda'), ['cuda'])
  else
    await assert.rejects(gpuDevicesServed('cpu,cuda'), { code: 'provider_unavailable', message: cuda.detail })
})
