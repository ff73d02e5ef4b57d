/**
 * Concurrent requests on the same resources: each gets a 2xx or a 4xx problem, never a 5xx, and no
 * interleaving leaves a run on a deleted dataset or two models of one name.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

const principles = [{ feature: 'clarity', good: 'Be clear.', bad: 'Be vague.' }]

describe('concurrent requests', () => {
  let t: TestApp
  let tinyId: string
  const scope = suiteScope()
  after(scope.close)
  before(async () => {
    t = await buildTestApp(scope, 'embedded', { env: { MAX_ACTIVE_RUNS_PER_KEY: '1000' } })
    tinyId = (await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })).json().items[0].id
  })
  const send = async (method: 'POST' | 'DELETE', url: string, payload?: object, headers = {}) => {
    const res = await t.app.inject({ method, url, headers: { ...auth(t.keys.admin), ...headers }, payload })
    assert.ok(res.statusCode < 500, `${method} ${url}: ${res.statusCode} ${res.body}`)
    if (res.statusCode >= 400)
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
    return res
  }
  const statuses = (responses: { statusCode: number }[]) => responses.map((r) => r.statusCode)
  const createRun = (datasetId: string, principleSetId?: string) =>
    send('POST', '/v1/runs', {
      method: 'sso',
      model_id: tinyId,
      dataset_ids: [datasetId],
      ...(principleSetId ? { principle_set_id: principleSetId } : {}),
    })

  test('one of ten registrations of a model name wins, the others are 409', async () => {
    await makeTinyModel(`${t.modelsRoot}/racing`, { seed: 1 })
    const results = statuses(
      await Promise.all(
        Array.from({ length: 10 }, () => send('POST', '/v1/models', { name: 'racing', path: 'racing' })),
      ),
    )
    assert.deepEqual(results.sort(), [201, ...Array(9).fill(409)])
  })

  test('ten uploads of the same content at once are all stored', async () => {
    const raced = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        t.app.inject({
          method: 'POST',
          url: `/v1/datasets?name=same-${i}&format=queries`,
          headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
          payload: '{"prompt":"one and the same"}\n',
        }),
      ),
    )
    assert.deepEqual(statuses(raced), Array(10).fill(201), raced.map((r) => r.body).join('\n'))
  })

  test('a dataset deleted while runs are created on it: never both', async () => {
    for (let trial = 0; trial < 6; trial++) {
      const datasetId = await uploadDataset(t, 'queries', [{ prompt: `trial ${trial}` }])
      const startRuns = () => Array.from({ length: 4 }, () => createRun(datasetId))
      const startDelete = () => send('DELETE', `/v1/datasets/${datasetId}`)
      // Both orders of starting them in the same tick: the delete first, or the runs first.
      const deleteFirst = trial % 2 === 0
      const early = deleteFirst ? [startDelete()] : startRuns()
      const late = deleteFirst ? startRuns() : [startDelete()]
      const [deletion, ...created] = deleteFirst
        ? [...(await Promise.all(early)), ...(await Promise.all(late))]
        : [...(await Promise.all(late)), ...(await Promise.all(early))]
      const deleted = deletion.statusCode === 204
      assert.ok(
        !(deleted && created.some((r) => r.statusCode === 201)),
        `trial ${trial}: ${deletion.statusCode} ${statuses(created)}`,
      )
    }
  })

  test('a principle set or a project deleted while things are created in it', async () => {
    const datasetId = await uploadDataset(t, 'queries')
    for (let trial = 0; trial < 4; trial++) {
      const set = (await send('POST', '/v1/principle-sets', { name: `set-${trial}`, principles })).json()
      const results = await Promise.all([
        send('DELETE', `/v1/principle-sets/${set.id}`),
        ...Array.from({ length: 4 }, () => createRun(datasetId, set.id)),
      ])
      const deleted = results[0].statusCode === 204
      assert.ok(!(deleted && results.slice(1).some((r) => r.statusCode === 201)), `${statuses(results)}`)
    }
    const project = (await send('POST', '/v1/projects', { name: 'short-lived' })).json()
    await Promise.all([
      send('DELETE', `/v1/projects/${project.id}`),
      ...Array.from({ length: 6 }, (_, i) =>
        send('POST', '/v1/principle-sets', { name: `in-${i}`, principles }, { 'x-project': project.id }),
      ),
    ])
  })
})
