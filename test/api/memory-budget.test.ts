/**
 * The memory budget: the API refuses a run that cannot fit WORKER_MEMORY_GB even with micro-batches
 * of one and gradient checkpointing (400 problem+json naming estimate and budget), and a worker with
 * a smaller budget than the API's ends such a run `failed` with the estimate before loading anything.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createWorker } from '../../src/worker/main.ts'
import { auth, buildTestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer, testLog } from '../helpers/db.ts'
import { until } from '../worker/until.ts'

after(stopEmbeddedServer)
const target = DATABASE_TARGETS[0]
const estimateAndBudget = /needs an estimated [\d.]+ GB .*budget of 0\.01 GB per run/

/** POST /v1/runs for an SSO run on the built-in tiny model. */
async function createSsoRun(t: Awaited<ReturnType<typeof buildTestApp>>) {
  const models = await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })
  const tiny = models.json().items.find((m: { name: string }) => m.name === 'tiny').id
  return t.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: auth(t.keys.write),
    payload: { method: 'sso', model_id: tiny, dataset_ids: [await uploadDataset(t, 'queries')] },
  })
}

test('a run that cannot fit the budget is refused at creation', { timeout: 120_000 }, async (ctx) => {
  const t = await buildTestApp(ctx, target, { env: { WORKER_MEMORY_GB: '0.01' } })
  const res = await createSsoRun(t)
  assert.equal(res.statusCode, 400, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  assert.equal(res.json().code, 'validation_failed')
  assert.match(res.json().detail, estimateAndBudget)
  assert.match(res.json().detail, /micro-batches of 1 and gradient checkpointing/)
  // the verdict is remembered per model and settings: the same post is refused the same way again
  const again = await createSsoRun(t)
  assert.equal(again.statusCode, 400, again.body)
  assert.equal(again.json().detail, res.json().detail)
})

test('the same run fits the default budget', { timeout: 120_000 }, async (ctx) => {
  const t = await buildTestApp(ctx, target)
  const res = await createSsoRun(t)
  assert.equal(res.statusCode, 201, res.body)
})

test('a worker whose budget is too small fails the run with the estimate', {
  timeout: 180_000,
}, async (ctx) => {
  const t = await buildTestApp(ctx, target)
  const created = await createSsoRun(t)
  assert.equal(created.statusCode, 201, created.body)
  const worker = await createWorker({
    config: { ...t.config, runMemoryBytes: 0.01 * 2 ** 30 },
    prisma: t.prisma,
    boss: t.boss,
    log: testLog,
    pollingIntervalSeconds: 0.5,
  })
  t.onClose(() => worker.stop())
  const id = created.json().id
  const run = await until(async () => {
    const r = (await t.app.inject({ url: `/v1/runs/${id}`, headers: auth(t.keys.read) })).json()
    return ['failed', 'succeeded'].includes(r.status) ? r : undefined
  }, 'the run to end')
  assert.equal(run.status, 'failed')
  assert.match(run.error.message, estimateAndBudget)
})
