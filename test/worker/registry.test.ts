/**
 * The worker registry behind GET /v1/workers: workers record themselves at start, heartbeat, and
 * record their stop; the API lists them with their devices and the runs they hold.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { WorkerDto } from '../../src/schemas/workers.ts'
import { auth, buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

test('GET /v1/workers: live workers with devices and held runs; stopped and lost ones only with all', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  const list = async (query = ''): Promise<WorkerDto[]> => {
    const res = await app.app.inject({ url: `/v1/workers${query}`, headers: auth(app.keys.read) })
    assert.equal(res.statusCode, 200, res.body)
    return res.json().items
  }
  const a = await startTestWorker(app)
  const b = await startTestWorker(app)

  const live = await list()
  assert.deepEqual(live.map((w) => w.id).sort(), [a.id, b.id].sort())
  for (const w of live) {
    assert.equal(w.state, 'live')
    assert.deepEqual(w.devices, ['cpu'])
    assert.equal(w.pid, process.pid)
    assert.equal(w.concurrency, 1)
  }

  const run = (
    await createTinyRun(app, {
      device: 'cpu',
      hyperparameters: { iterations: 2, batch_size: 1, max_new_tokens: 3, generation_batch_size: 2 },
    })
  ).json() as { id: string }
  const holder = await until(
    async () => (await list()).find((w) => w.run_ids.includes(run.id)),
    'a worker to hold the run',
  )
  assert.equal((await app.repos.runs.findById(run.id))?.worker_id, holder.id)
  await until(
    async () => ((await app.repos.runs.findStatus(run.id)) === 'succeeded' ? true : undefined),
    'the run to succeed',
  )

  await b.stop()
  // a falls silent without stopping, as a killed process would.
  await app.prisma
    .$executeRaw`UPDATE workers SET heartbeat_at = now() - interval '5 minutes' WHERE id = ${a.id}`
  assert.deepEqual(await list(), [])
  const all = await list('?all=true')
  assert.deepEqual(Object.fromEntries(all.map((w) => [w.id, w.state])), { [a.id]: 'lost', [b.id]: 'stopped' })
  assert.ok(all.find((w) => w.id === b.id)?.stopped_at)

  const metrics = await app.app.inject({ url: '/metrics', headers: auth(app.keys.read) })
  assert.match(metrics.body, /^sso_workers\{device="any"\} 0$/m)
  const bad = await app.app.inject({ url: '/v1/workers?all=maybe', headers: auth(app.keys.read) })
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8')
})
