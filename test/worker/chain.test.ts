/**
 * Chaining runs: a succeeded run's final model is registered as a model, and a later run trains on it
 * (SFT first, then preference training, as the method's pipeline does).
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { auth, buildTestApp, startTestWorker, type TestApp } from '../helpers/build-app.ts'
import { createTinyRun, uploadDataset } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

const registerModel = (app: TestApp, body: Record<string, unknown>) =>
  app.app.inject({ method: 'POST', url: '/v1/models', headers: auth(app.keys.write), payload: body })

const finished = (app: TestApp, runId: string) =>
  until(async () => {
    const status = await app.repos.runs.findStatus(runId)
    return status === 'succeeded' || status === 'failed' ? status : undefined
  }, `run ${runId} to finish`)

test("a succeeded run's final model is registered by run_id and trained on by the next run", async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  const small = { batch_size: 1, max_new_tokens: 3, generation_batch_size: 2 }
  const sft = (
    await createTinyRun(app, {
      method: 'sft',
      device: 'cpu',
      dataset_ids: [await uploadDataset(app, 'sft_pairs')],
      hyperparameters: { epochs: 1, ...small },
    })
  ).json() as { id: string }

  const early = await registerModel(app, { name: 'too-early', run_id: sft.id })
  assert.equal(early.statusCode, 409, 'a queued run has no final model yet')
  assert.match(early.json().detail, /is queued; only a succeeded run has a final model/)

  await startTestWorker(app)
  assert.equal(await finished(app, sft.id), 'succeeded')
  const registered = await registerModel(app, { name: 'tiny-sft', run_id: sft.id })
  assert.equal(registered.statusCode, 201, registered.body)
  const model = registered.json()
  assert.equal(model.kind, 'local_hf')
  assert.ok(model.path.endsWith(`${sft.id}/final`))
  assert.equal(typeof model.config.hidden_size, 'number')

  const next = (
    await createTinyRun(app, {
      model_id: model.id,
      device: 'cpu',
      hyperparameters: { iterations: 1, ...small },
    })
  ).json() as { id: string; model_id: string }
  assert.equal(next.model_id, model.id)
  assert.equal(await finished(app, next.id), 'succeeded')
  const losses = await app.repos.metrics.history(next.id, { keys: 'loss' })
  assert.ok(losses[0].points.length > 0, 'the run on the registered model trained')
})

test('registering a model: path or run_id, exactly one; unknown runs are 404', async (t) => {
  const app = await buildTestApp(t, 'embedded')
  const cases: [Record<string, unknown>, number, RegExp][] = [
    [{ name: 'x' }, 400, /either path .* or run_id/],
    [{ name: 'x', path: 'a', run_id: '00000000-0000-4000-8000-000000000000' }, 400, /either path/],
    [{ name: 'x', run_id: '00000000-0000-4000-8000-000000000000' }, 404, /run/],
    [{ name: 'x', run_id: 'not-a-uuid' }, 400, /run_id/],
  ]
  for (const [body, status, detail] of cases) {
    const res = await registerModel(app, body)
    assert.equal(res.statusCode, status, res.body)
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    assert.match(res.json().detail, detail)
  }
})
