/**
 * MLflow tracking through its REST API. The tracking server here is a small HTTP stand-in that answers
 * the five MLflow endpoints the worker uses and records what it was sent; training is real.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, type TestContext, test } from 'node:test'
import { mlflowAuthorization } from '../../src/worker/mlflow-tracker.ts'
import { auth, buildTestApp, startTestWorker, type TestApp } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

interface MlflowCall {
  path: string
  body: Record<string, unknown>
}

/**
 * The stand-in: no experiment exists until created, and each created run gets the next id. With
 * `authorization`, a call without that header is answered 401, as a server with auth does.
 */
async function startMlflowStandIn(
  t: TestContext,
  authorization?: string,
): Promise<{ uri: string; calls: MlflowCall[] }> {
  const calls: MlflowCall[] = []
  let runsCreated = 0
  const server = http.createServer((req, res) => {
    let text = ''
    req.on('data', (c) => {
      text += c
    })
    req.on('end', () => {
      const path = (req.url ?? '').replace('/api/2.0/mlflow/', '').split('?')[0]
      const reply = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (authorization && req.headers.authorization !== authorization)
        return reply(401, { error_code: 'UNAUTHENTICATED' })
      calls.push({ path, body: text ? JSON.parse(text) : {} })
      if (path === 'experiments/get-by-name') return reply(404, { error_code: 'RESOURCE_DOES_NOT_EXIST' })
      if (path === 'experiments/create') return reply(200, { experiment_id: '7' })
      if (path === 'runs/create')
        return reply(200, { run: { info: { run_id: `mlflow-run-${++runsCreated}` } } })
      return reply(200, {})
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  return { uri: `http://127.0.0.1:${(server.address() as { port: number }).port}`, calls }
}

async function startTrackedApp(
  t: TestContext,
  uri: string,
  env: Record<string, string> = {},
): Promise<TestApp> {
  const app = await buildTestApp(t, 'embedded', {
    env: { EXECUTION_PROVIDER: 'cpu', MLFLOW_TRACKING_URI: uri, ...env },
  })
  await startTestWorker(app)
  return app
}

const createTrackedRun = async (app: TestApp, hyperparameters: Record<string, unknown>) =>
  (
    await createTinyRun(app, {
      device: 'cpu',
      metadata: { mlflow_experiment: 'sso-tests' },
      // deterministic: the same samples under any load (a multi-threaded run could sample responses
      // that cleaning drops, leaving no step and no loss to track)
      hyperparameters: {
        batch_size: 2,
        max_new_tokens: 3,
        generation_batch_size: 2,
        deterministic: true,
        ...hyperparameters,
      },
    })
  ).json() as { id: string }

const untilStatus = (app: TestApp, runId: string, status: string, ms = 60_000) =>
  until(
    async () => ((await app.repos.runs.findStatus(runId)) === status ? true : undefined),
    `run ${status}`,
    ms,
  )

const loggedBatches = (calls: MlflowCall[]) => calls.filter((c) => c.path === 'runs/log-batch')

/** Asserts that every stored loss reached MLflow once, with its step. */
async function assertLossesTracked(app: TestApp, runId: string, calls: MlflowCall[]): Promise<void> {
  const metrics = loggedBatches(calls).flatMap(
    (c) => (c.body.metrics as { key: string; step: number }[] | undefined) ?? [],
  )
  const stored = await app.repos.metrics.history(runId, { keys: 'loss' })
  assert.ok(stored[0].points.length > 0)
  assert.deepEqual(
    metrics.filter((m) => m.key === 'loss').map((m) => m.step),
    stored[0].points.map((p) => p[0]),
    'every stored loss reached MLflow with its step',
  )
}

test('a run with mlflow_experiment metadata is tracked: params, batched metrics, final status', async (t) => {
  // Through basic auth, as `mlflow server --app-name basic-auth` asks: every call must carry it.
  const { uri, calls } = await startMlflowStandIn(
    t,
    `Basic ${Buffer.from('tracker:pa:ss').toString('base64')}`,
  )
  const app = await startTrackedApp(t, uri, {
    MLFLOW_TRACKING_USERNAME: 'tracker',
    MLFLOW_TRACKING_PASSWORD: 'pa:ss',
  })
  const run = await createTrackedRun(app, { iterations: 1 })
  await untilStatus(app, run.id, 'succeeded')
  const paths = calls.map((c) => c.path)
  assert.deepEqual(paths.slice(0, 3), ['experiments/get-by-name', 'experiments/create', 'runs/create'])
  assert.equal(calls[1].body.name, 'sso-tests')
  assert.equal(paths.at(-1), 'runs/update')
  assert.equal(calls.at(-1)!.body.status, 'FINISHED')
  const shown = await app.app.inject({ url: `/v1/runs/${run.id}`, headers: auth(app.keys.read) })
  assert.equal(shown.json().mlflow_run_id, 'mlflow-run-1', 'the run resource links its MLflow run')
  const params = loggedBatches(calls).flatMap(
    (c) => (c.body.params as { key: string; value: string }[] | undefined) ?? [],
  )
  assert.ok(params.some((p) => p.key === 'beta' && p.value === '0.2'))
  assert.ok(params.some((p) => p.key === 'sampling.chosen.temperature'))
  await assertLossesTracked(app, run.id, calls)
})

test('an attempt resuming after a pause logs into the MLflow run the first attempt created', async (t) => {
  const { uri, calls } = await startMlflowStandIn(t)
  const app = await startTrackedApp(t, uri)
  const run = await createTrackedRun(app, { iterations: 3, batch_size: 1 })
  const action = async (name: 'pause' | 'resume') => {
    const res = await app.app.inject({
      method: 'POST',
      url: `/v1/runs/${run.id}/${name}`,
      headers: auth(app.keys.write),
    })
    assert.equal(res.statusCode, 200, res.body)
  }
  await until(
    async () => ((await app.repos.metrics.history(run.id, { keys: 'loss' })).length > 0 ? true : undefined),
    'a first logged loss',
  )
  await action('pause')
  // The first attempt has ended once the worker lets go of the paused run.
  const firstEnd = await until(async () => {
    const r = await app.repos.runs.findById(run.id)
    return r?.worker_id === null ? r : undefined
  }, 'the first attempt to end')
  assert.equal(firstEnd.status, 'paused', firstEnd.error?.message)
  assert.ok(!calls.some((c) => c.path === 'runs/update'), 'a paused attempt leaves the MLflow run RUNNING')
  await action('resume')
  await untilStatus(app, run.id, 'succeeded', 120_000)

  assert.equal((await app.repos.runs.findById(run.id))?.attempt, 2)
  assert.equal(calls.filter((c) => c.path === 'runs/create').length, 1, 'one MLflow run for both attempts')
  const runCalls = calls.filter((c) => c.path.startsWith('runs/'))
  assert.ok(loggedBatches(calls).length >= 2)
  for (const c of runCalls.filter((c) => c.path !== 'runs/create'))
    assert.equal(c.body.run_id, 'mlflow-run-1', `${c.path} goes to the first MLflow run`)
  const betas = loggedBatches(calls).flatMap(
    (c) => (c.body.params as { key: string }[] | undefined)?.filter((p) => p.key === 'beta') ?? [],
  )
  assert.equal(betas.length, 1, 'params are logged once, by the first attempt')
  assert.equal(runCalls.at(-1)!.path, 'runs/update')
  assert.equal(runCalls.at(-1)!.body.status, 'FINISHED')
  await assertLossesTracked(app, run.id, calls)
})

test('MLflow auth follows its client: basic auth when user and password are set, else a bearer token', () => {
  assert.equal(mlflowAuthorization({}), undefined)
  assert.equal(mlflowAuthorization({ MLFLOW_TRACKING_TOKEN: 'tok' }), 'Bearer tok')
  assert.equal(
    mlflowAuthorization({
      MLFLOW_TRACKING_USERNAME: 'u',
      MLFLOW_TRACKING_PASSWORD: 'p',
      MLFLOW_TRACKING_TOKEN: 'tok',
    }),
    `Basic ${Buffer.from('u:p').toString('base64')}`,
  )
})
