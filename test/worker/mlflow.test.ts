/**
 * MLflow tracking through its REST API. The tracking server here is a small HTTP stand-in that answers
 * the five MLflow endpoints the worker uses and records what it was sent; training is real.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, test } from 'node:test'
import { buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

test('a run with mlflow_experiment metadata is tracked: params, batched metrics, final status', async (t) => {
  const calls: { path: string; body: Record<string, unknown> }[] = []
  const server = http.createServer((req, res) => {
    let text = ''
    req.on('data', (c) => {
      text += c
    })
    req.on('end', () => {
      const path = (req.url ?? '').replace('/api/2.0/mlflow/', '').split('?')[0]
      calls.push({ path, body: text ? JSON.parse(text) : {} })
      const reply = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (path === 'experiments/get-by-name') return reply(404, { error_code: 'RESOURCE_DOES_NOT_EXIST' })
      if (path === 'experiments/create') return reply(200, { experiment_id: '7' })
      if (path === 'runs/create') return reply(200, { run: { info: { run_id: 'mlflow-run-1' } } })
      return reply(200, {})
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  const uri = `http://127.0.0.1:${(server.address() as { port: number }).port}`

  const app = await buildTestApp(t, 'embedded', {
    env: { EXECUTION_PROVIDER: 'cpu', MLFLOW_TRACKING_URI: uri },
  })
  await startTestWorker(app)
  const run = (
    await createTinyRun(app, {
      device: 'cpu',
      metadata: { mlflow_experiment: 'sso-tests' },
      hyperparameters: { iterations: 1, batch_size: 2, max_new_tokens: 3, generation_batch_size: 2 },
    })
  ).json()
  const deadline = Date.now() + 60_000
  while ((await app.repos.runs.findStatus(run.id)) !== 'succeeded') {
    assert.ok(Date.now() < deadline, 'the run finishes')
    await new Promise((r) => setTimeout(r, 200))
  }
  const paths = calls.map((c) => c.path)
  assert.deepEqual(paths.slice(0, 3), ['experiments/get-by-name', 'experiments/create', 'runs/create'])
  assert.equal(calls[1].body.name, 'sso-tests')
  assert.equal(paths.at(-1), 'runs/update')
  assert.equal(calls.at(-1)!.body.status, 'FINISHED')
  const batches = calls.filter((c) => c.path === 'runs/log-batch')
  const params = batches.flatMap((c) => (c.body.params as { key: string; value: string }[] | undefined) ?? [])
  assert.ok(params.some((p) => p.key === 'beta' && p.value === '0.2'))
  assert.ok(params.some((p) => p.key === 'sampling.chosen.temperature'))
  const metrics = batches.flatMap(
    (c) => (c.body.metrics as { key: string; step: number }[] | undefined) ?? [],
  )
  const stored = await app.repos.metrics.history(run.id, { keys: 'loss' })
  assert.ok(stored[0].points.length > 0)
  assert.deepEqual(
    metrics.filter((m) => m.key === 'loss').map((m) => m.step),
    stored[0].points.map((p) => p[0]),
    'every stored loss reached MLflow with its step',
  )
})
