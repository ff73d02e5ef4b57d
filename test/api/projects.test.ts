/**
 * Projects: a key sees and acts only on its own project's resources (another project's answer 404,
 * as if they did not exist), the built-in model is shared read-only, and the stream checks the
 * run's project on SSE and WebSocket alike. Real Postgres, real HTTP and WebSocket clients.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import WebSocket from 'ws'
import { appendRunFramesNow } from '../../src/db/run-frames.ts'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { SAMPLE_ROWS } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

const principles = [{ feature: 'clarity', good: 'Write clearly.', bad: 'Write confusingly.' }]

interface Project {
  id: string
  key: string
}

/** What one project holds after setup: a run with metrics, samples and a checkpoint, and what it used. */
interface Holdings {
  run: string
  dataset: string
  set: string
  model: string
  checkpoint: string
}

/** Answers of a WebSocket to the stream: the HTTP status when refused, else its messages and close code. */
function streamOverWebSocket(url: string, headers: Record<string, string>, first?: object) {
  return new Promise<{ status?: number; messages: { type: string; code?: string }[]; code?: number }>(
    (resolve, reject) => {
      const ws = new WebSocket(url, { headers })
      const messages: { type: string; code?: string }[] = []
      ws.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode, messages })
        res.resume()
        ws.terminate()
      })
      ws.on('open', () => first && ws.send(JSON.stringify(first)))
      ws.on('message', (data) => {
        messages.push(JSON.parse(String(data)))
        // A subscription that started is all the test needs to see.
        if (messages.at(-1)!.type === 'subscribed') ws.close()
      })
      ws.on('close', (code) => resolve({ messages, code }))
      ws.on('error', (e) => (e.message.includes('Unexpected server response') ? undefined : reject(e)))
    },
  )
}

/** The status, content type and first chunk of an SSE request. */
function streamOverSse(url: string, headers: Record<string, string>) {
  return new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      res.once('data', (chunk) => {
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          text: String(chunk),
        })
        req.destroy()
      })
    })
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)))
  })
}

for (const target of DATABASE_TARGETS) {
  describe(`projects (${target})`, { timeout: 180_000 }, () => {
    let t: TestApp
    let base: string
    let tinyId: string
    let alpha: Project
    let beta: Project
    let held: Holdings
    const scope = suiteScope()
    after(scope.close)

    const call = (key: string, method: string, url: string, payload?: unknown, headers = {}) =>
      t.app.inject({
        method: method as 'GET',
        url,
        headers: { ...auth(key), ...headers },
        ...(payload === undefined ? {} : { payload: payload as object }),
      })
    const ok = async (key: string, method: string, url: string, payload?: unknown, status = 200) => {
      const res = await call(key, method, url, payload)
      assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`)
      return res.statusCode === 204 ? null : res.json()
    }
    const newProject = async (name: string): Promise<Project> => {
      const project = await ok(t.keys.admin, 'POST', '/v1/projects', { name }, 201)
      const key = await ok(
        t.keys.admin,
        'POST',
        '/v1/api-keys',
        { name: `${name}-writer`, scopes: ['write'], project_id: name },
        201,
      )
      assert.equal(key.project_id, project.id)
      return { id: project.id, key: key.key }
    }

    /** Everything one project owns, created through the API with the project's key. */
    const fill = async (p: Project, name: string): Promise<Holdings> => {
      const upload = await t.app.inject({
        method: 'POST',
        url: `/v1/datasets?name=${name}&format=queries`,
        headers: { ...auth(p.key), 'content-type': 'application/x-ndjson' },
        payload: SAMPLE_ROWS.queries.map((r) => JSON.stringify(r)).join('\n'),
      })
      assert.equal(upload.statusCode, 201, upload.body)
      const dataset = upload.json().id
      const set = (await ok(p.key, 'POST', '/v1/principle-sets', { name, principles }, 201)).id
      const folder = path.join(t.modelsRoot, name)
      await mkdir(folder, { recursive: true })
      await writeFile(path.join(folder, 'config.json'), '{"model_type":"llama"}')
      const model = (await ok(p.key, 'POST', '/v1/models', { name, path: name }, 201)).id
      const run = (
        await ok(
          p.key,
          'POST',
          '/v1/runs',
          { method: 'sso', model_id: tinyId, dataset_ids: [dataset], principle_set_id: set },
          201,
        )
      ).id
      await appendRunFramesNow(t.prisma, run, [{ type: 'metrics', step: 1, data: { values: { loss: 1 } } }])
      await t.repos.metrics.createMany([{ runId: run, key: 'loss', step: 1, value: 1, iteration: null }])
      await t.repos.samples.createMany(run, 0, [{ instruction: 'q', chosen: 'a', rejected: 'b' }])
      const dir = path.join(t.dataDir, `ckpt-${name}`)
      await mkdir(dir)
      await writeFile(path.join(dir, 'model.safetensors'), 'weights')
      const checkpoint = (
        await t.repos.checkpoints.upsert({ runId: run, step: 1, iteration: 0, kind: 'full', dir, bytes: 7 })
      ).id
      return { run, dataset, set, model, checkpoint }
    }

    before(async () => {
      t = await buildTestApp(scope, target)
      base = await t.listen()
      tinyId = (await ok(t.keys.admin, 'GET', '/v1/models')).items.find(
        (m: { name: string }) => m.name === 'tiny',
      ).id
      alpha = await newProject('alpha')
      beta = await newProject('beta')
      held = await fill(alpha, 'alpha')
    })

    const reads = () => [
      `/v1/runs/${held.run}`,
      `/v1/runs/${held.run}/events`,
      `/v1/runs/${held.run}/metrics`,
      `/v1/runs/${held.run}/samples`,
      `/v1/runs/${held.run}/checkpoints`,
      `/v1/runs/${held.run}/checkpoints/${held.checkpoint}/files/model.safetensors`,
      `/v1/datasets/${held.dataset}`,
      `/v1/datasets/${held.dataset}/content`,
      `/v1/principle-sets/${held.set}`,
      `/v1/models/${held.model}`,
    ]

    test("another project's resources answer 404 problem+json on every read", async () => {
      for (const url of reads()) {
        assert.equal((await call(alpha.key, 'GET', url)).statusCode, 200, `alpha reads its own ${url}`)
        const res = await call(beta.key, 'GET', url)
        assert.equal(res.statusCode, 404, `beta reads ${url}: ${res.body}`)
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
        assert.equal(res.json().code, 'not_found')
      }
    })

    test("lists hold only the key's project; the built-in model is in every one", async () => {
      for (const [url, id] of [
        ['/v1/runs', held.run],
        ['/v1/datasets', held.dataset],
        ['/v1/principle-sets', held.set],
        ['/v1/models', held.model],
      ]) {
        const ids = async (key: string) =>
          (await ok(key, 'GET', url)).items.map((i: { id: string }) => i.id) as string[]
        assert.ok((await ids(alpha.key)).includes(id), `alpha lists ${url}`)
        assert.ok(!(await ids(beta.key)).includes(id), `beta does not list ${url}`)
        assert.ok((await ids(t.keys.admin)).includes(id), `an all-projects admin key lists ${url}`)
      }
      assert.deepEqual(
        (await ok(beta.key, 'GET', '/v1/models')).items.map((m: { name: string }) => m.name),
        ['tiny'],
      )
    })

    test("a name lookup sees only its project's datasets and principle sets", async () => {
      // what the demo set-up relies on: a dataset named like the demo's in another project does not
      // stand in for the demo's own in `default`
      for (const [repo, id] of [
        [t.repos.datasets, held.dataset],
        [t.repos.principleSets, held.set],
      ] as const) {
        assert.equal((await repo.findByName('alpha', alpha.id))?.id, id)
        assert.equal(await repo.findByName('alpha', beta.id), null)
      }
    })

    test("another project's runs, datasets, sets and models cannot be changed or used", async () => {
      for (const action of ['pause', 'cancel', 'resume'])
        assert.equal((await call(beta.key, 'POST', `/v1/runs/${held.run}/${action}`, {})).statusCode, 404)
      assert.equal(
        (await call(beta.key, 'PATCH', `/v1/principle-sets/${held.set}`, { name: 'x' })).statusCode,
        404,
      )
      for (const url of [
        `/v1/datasets/${held.dataset}`,
        `/v1/principle-sets/${held.set}`,
        `/v1/models/${held.model}`,
      ])
        assert.equal((await call(beta.key, 'DELETE', url)).statusCode, 404, url)
      const own = await t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=b&format=queries',
        headers: { ...auth(beta.key), 'content-type': 'application/x-ndjson' },
        payload: JSON.stringify({ prompt: 'Hi.' }),
      })
      const uses = [
        { model_id: tinyId, dataset_ids: [held.dataset] },
        { model_id: tinyId, dataset_ids: [own.json().id], principle_set_id: held.set },
        { model_id: held.model, dataset_ids: [own.json().id] },
      ]
      for (const use of uses) {
        const res = await call(beta.key, 'POST', '/v1/runs', { method: 'sso', ...use })
        assert.equal(res.statusCode, 404, res.body)
      }
      assert.equal(
        (await call(beta.key, 'POST', '/v1/models', { name: 'b', run_id: held.run })).statusCode,
        404,
      )
      // Still alpha's and untouched.
      assert.equal((await ok(alpha.key, 'GET', `/v1/runs/${held.run}`)).status, 'queued')
      assert.equal((await ok(alpha.key, 'GET', `/v1/principle-sets/${held.set}`)).name, 'alpha')
    })

    test('the built-in model is shared read-only; a run on it stays in its project', async () => {
      assert.equal((await ok(beta.key, 'GET', `/v1/models/${tinyId}`)).kind, 'builtin_tiny')
      const refused = await call(t.keys.admin, 'DELETE', `/v1/models/${tinyId}`)
      assert.equal(refused.statusCode, 409)
      assert.match(refused.json().detail, /built-in model is shared/)
    })

    test('an all-projects admin key picks a project with X-Project', async () => {
      const inBeta = { 'x-project': 'beta' }
      assert.equal(
        (await call(t.keys.admin, 'GET', `/v1/runs/${held.run}`, undefined, inBeta)).statusCode,
        404,
      )
      assert.equal((await call(t.keys.admin, 'GET', `/v1/runs/${held.run}`)).statusCode, 200)
      const set = await call(
        t.keys.admin,
        'POST',
        '/v1/principle-sets',
        { name: 'made-for-beta', principles },
        inBeta,
      )
      assert.equal(set.statusCode, 201)
      assert.equal((await call(beta.key, 'GET', `/v1/principle-sets/${set.json().id}`)).statusCode, 200)
      // A project key cannot leave its project with the header.
      const out = await call(beta.key, 'GET', '/v1/runs', undefined, { 'x-project': 'alpha' })
      assert.equal(out.statusCode, 400)
      assert.match(out.json().detail, /x-project: no project 'alpha'/)
    })

    test("the stream refuses another project's run over SSE and WebSocket", async () => {
      const url = `${base}/v1/runs/${held.run}/stream`
      const wsUrl = url.replace('http', 'ws')
      const own = await streamOverSse(url, auth(alpha.key))
      assert.equal(own.status, 200)
      assert.match(own.type, /text\/event-stream/)
      const sse = await streamOverSse(url, auth(beta.key))
      assert.equal(sse.status, 404)
      assert.match(sse.type, /application\/problem\+json/)

      const ownWs = await streamOverWebSocket(wsUrl, auth(alpha.key))
      assert.ok(ownWs.messages.some((m) => m.type === 'subscribed'))
      assert.equal((await streamOverWebSocket(wsUrl, auth(beta.key))).status, 404)
      const byMessage = await streamOverWebSocket(wsUrl, {}, { type: 'subscribe', api_key: beta.key })
      assert.equal(byMessage.code, 1008)
      assert.deepEqual(
        byMessage.messages.map((m) => [m.type, m.code]),
        [['error', 'not_found']],
      )
      const ownByMessage = await streamOverWebSocket(wsUrl, {}, { type: 'subscribe', api_key: alpha.key })
      assert.ok(ownByMessage.messages.some((m) => m.type === 'subscribed'))
    })

    test('projects: admins create and delete empty ones; a project key sees only its own', async () => {
      assert.deepEqual(
        (await ok(beta.key, 'GET', '/v1/projects')).items.map((p: { name: string }) => p.name),
        ['beta'],
      )
      assert.equal((await call(beta.key, 'GET', `/v1/projects/${alpha.id}`)).statusCode, 404)
      assert.equal((await call(beta.key, 'POST', '/v1/projects', { name: 'x' })).statusCode, 403)
      const names = (await ok(t.keys.admin, 'GET', '/v1/projects')).items.map((p: { name: string }) => p.name)
      assert.deepEqual(names.sort(), ['alpha', 'beta', 'default'])
      assert.equal((await call(t.keys.admin, 'POST', '/v1/projects', { name: 'alpha' })).statusCode, 409)
      const full = await call(t.keys.admin, 'DELETE', '/v1/projects/alpha')
      assert.equal(full.statusCode, 409)
      assert.match(full.json().detail, /still holds 4 resource/)
      assert.equal((await call(t.keys.admin, 'DELETE', '/v1/projects/default')).statusCode, 409)

      const gamma = await newProject('gamma')
      assert.equal((await call(gamma.key, 'GET', '/v1/runs')).statusCode, 200)
      await ok(t.keys.admin, 'DELETE', '/v1/projects/gamma', undefined, 204)
      assert.equal((await call(gamma.key, 'GET', '/v1/runs')).statusCode, 401, 'its keys went with it')
      assert.equal((await call(t.keys.admin, 'GET', '/v1/projects/gamma')).statusCode, 404)
    })
  })
}
