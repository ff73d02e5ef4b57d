/**
 * A run paused and then cancelled before its attempt let go of it: the pause ends the attempt, but
 * the cancel has already ended the run, so the attempt's own "cancelled" finds nothing to move. It
 * must still let go, or the run reads as held by its worker for ever (`worker_id`, GET /v1/workers).
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { auth, buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

test('a run cancelled while its pause is being saved ends cancelled and held by no worker', {
  timeout: 180_000,
}, async (ctx) => {
  const t = await buildTestApp(ctx, DATABASE_TARGETS[0], { env: { EXECUTION_PROVIDER: 'cpu' } })
  const run = (await createTinyRun(t, { hyperparameters: { iterations: 50, max_new_tokens: 4 } })).json()
  await startTestWorker(t)
  const get = async (url: string) => (await t.app.inject({ url, headers: auth(t.keys.read) })).json()
  const post = async (action: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/runs/${run.id}/${action}`,
      headers: auth(t.keys.write),
    })
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  await until(
    async () => ((await get(`/v1/runs/${run.id}`)).status === 'running' ? true : undefined),
    'running',
  )
  assert.equal((await post('pause')).status, 'paused')
  // Paused runs are cancelled at once, while the attempt is still saving its checkpoint.
  assert.equal((await post('cancel')).status, 'cancelled')
  const ended = await until(
    async () => {
      const r = await get(`/v1/runs/${run.id}`)
      return r.worker_id === null ? r : undefined
    },
    'the attempt to let go of the run',
    60_000,
  )
  assert.equal(ended.status, 'cancelled')
  const workers = await get('/v1/workers')
  assert.ok(workers.items.every((w: { run_ids: string[] }) => !w.run_ids.includes(run.id)))
})
