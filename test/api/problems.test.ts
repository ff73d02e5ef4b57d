/** Every bad input gets an application/problem+json 4xx with a useful detail, never a 500. */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

function assertProblem(res: LightMyRequestResponse, status: number, code: string, detail?: RegExp) {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  const body = res.json()
  assert.equal(body.status, status)
  assert.equal(body.code, code)
  assert.equal(typeof body.instance, 'string')
  assert.equal(body.type, `urn:sso-trainer:problem:${code}`)
  if (detail) assert.match(body.detail, detail)
  return body
}

const principles = [{ feature: 'clarity', good: 'Write clearly.', bad: 'Write confusingly.' }]

for (const target of DATABASE_TARGETS) {
  describe(`bad input is a 4xx problem (${target})`, () => {
    let t: TestApp
    let tinyId: string
    let queriesId: string
    const scope = suiteScope()
    after(scope.close)
    before(async () => {
      t = await buildTestApp(scope, target)
      const models = await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })
      tinyId = models.json().items.find((m: { name: string }) => m.name === 'tiny').id
      queriesId = await uploadDataset(t, 'queries')
    })
    const post = (url: string, payload: unknown, key = t.keys.write) =>
      t.app.inject({ method: 'POST', url, headers: auth(key), payload: payload as object })

    test('missing, wrong and revoked API keys are 401; too small a scope is 403', async () => {
      assertProblem(await t.app.inject({ url: '/v1/runs' }), 401, 'unauthorized', /API key is required/)
      assertProblem(
        await t.app.inject({ url: '/v1/runs', headers: auth('sso_nope') }),
        401,
        'unauthorized',
        /not valid/,
      )
      assertProblem(
        await t.app.inject({ url: '/v1/runs', headers: { 'x-api-key': 'wrong' } }),
        401,
        'unauthorized',
      )
      assertProblem(
        await post('/v1/principle-sets', { name: 'x', principles }, t.keys.read),
        403,
        'forbidden',
        /needs 'write'/,
      )
      assertProblem(
        await t.app.inject({ url: '/v1/api-keys', headers: auth(t.keys.write) }),
        403,
        'forbidden',
        /'admin'/,
      )
      const created = await post('/v1/api-keys', { name: 'short-lived', scopes: ['read'] }, t.keys.admin)
      assert.equal(created.statusCode, 201)
      const { id, key } = created.json()
      assert.equal((await t.app.inject({ url: '/v1/runs', headers: auth(key) })).statusCode, 200)
      const revoked = await t.app.inject({
        method: 'DELETE',
        url: `/v1/api-keys/${id}`,
        headers: auth(t.keys.admin),
      })
      assert.equal(revoked.statusCode, 204)
      // Health and docs stay open.
      assert.equal((await t.app.inject({ url: '/healthz' })).statusCode, 200)
      assert.equal((await t.app.inject({ url: '/readyz' })).statusCode, 200)
    })

    test('malformed JSON and unknown fields are refused, naming the field', async () => {
      const malformed = await t.app.inject({
        method: 'POST',
        url: '/v1/principle-sets',
        headers: { ...auth(t.keys.write), 'content-type': 'application/json' },
        payload: '{"name": "x", "principles": [',
      })
      assertProblem(malformed, 400, 'validation_failed', /malformed JSON/)
      const unknown = assertProblem(
        await post('/v1/principle-sets', { name: 'x', principles, colour: 'red' }),
        400,
        'validation_failed',
        /unknown field 'colour'/,
      )
      assert.ok(unknown.errors.length >= 1)
      assertProblem(
        await post('/v1/runs', { method: 'sso', model_id: tinyId, hyperparameters: { learning_rate: 1 } }),
        400,
        'validation_failed',
        /learning_rate/,
      )
      assertProblem(
        await post('/v1/runs', { method: 'magic', model_id: tinyId }),
        400,
        'validation_failed',
        /method/,
      )
    })

    test('out-of-range hyperparameters are 400 with the path', async () => {
      const res = await post('/v1/runs', {
        method: 'sso',
        model_id: tinyId,
        hyperparameters: { beta: -1, iterations: 1000 },
      })
      const body = assertProblem(res, 400, 'validation_failed')
      assert.match(body.detail, /beta/)
      assert.match(body.detail, /iterations/)
      assertProblem(
        await post('/v1/runs', {
          method: 'sso',
          model_id: tinyId,
          hyperparameters: { principle_selection: 'fixed' },
        }),
        400,
        'validation_failed',
        /fixed_features/,
      )
      const float16 = { precision: 'float16' }
      for (const device of [undefined, 'cpu', 'auto']) {
        assertProblem(
          await post('/v1/runs', { method: 'sso', model_id: tinyId, device, hyperparameters: float16 }),
          400,
          'validation_failed',
          /precision float16 needs device webgpu/,
        )
      }
      assertProblem(
        await post('/v1/runs', {
          method: 'rm',
          model_id: tinyId,
          device: 'webgpu',
          hyperparameters: float16,
        }),
        400,
        'validation_failed',
        /rm method trains in float32/,
      )
    })

    test('unknown ids are 404 and malformed ids 400', async () => {
      const missing = '00000000-0000-4000-8000-000000000000'
      assertProblem(
        await t.app.inject({ url: `/v1/runs/${missing}`, headers: auth(t.keys.read) }),
        404,
        'not_found',
        /run/,
      )
      assertProblem(
        await t.app.inject({ url: '/v1/runs/not-a-uuid', headers: auth(t.keys.read) }),
        400,
        'validation_failed',
      )
      assertProblem(await post('/v1/runs', { method: 'sso', model_id: missing }), 404, 'not_found', /model/)
      assertProblem(
        await post('/v1/runs', { method: 'sso', model_id: tinyId, principle_set_id: missing }),
        404,
        'not_found',
        /principle set/,
      )
      assertProblem(
        await post('/v1/runs', { method: 'dpo', model_id: tinyId, dataset_ids: [missing] }),
        404,
        'not_found',
        /dataset/,
      )
      assertProblem(await post(`/v1/runs/${missing}/cancel`, {}), 404, 'not_found')
      assertProblem(
        await t.app.inject({ url: `/v1/runs/${missing}/metrics`, headers: auth(t.keys.read) }),
        404,
        'not_found',
      )
      assertProblem(
        await t.app.inject({ url: '/v1/no-such-thing', headers: auth(t.keys.read) }),
        404,
        'not_found',
      )
      assertProblem(
        await t.app.inject({ url: '/v1/runs?cursor=garbage', headers: auth(t.keys.read) }),
        400,
        'validation_failed',
        /cursor/,
      )
    })

    test('a run without training data, or with data its method cannot read, is 400 naming what to pass', async () => {
      const none = assertProblem(
        await post('/v1/runs', { method: 'sso', model_id: tinyId }),
        400,
        'validation_failed',
        /'sso' run trains on data: pass dataset_ids .*queries \(format=queries\)/,
      )
      assert.equal(none.errors[0].path, 'dataset_ids')
      assertProblem(
        await post('/v1/runs', { method: 'dpo', model_id: tinyId, dataset_ids: [] }),
        400,
        'validation_failed',
        /dataset_ids .*preference pairs \(format=preference_pairs\) or SSO records/,
      )
      assertProblem(
        await post('/v1/runs', { method: 'sft', model_id: tinyId }),
        400,
        'validation_failed',
        /SFT pairs \(format=sft_pairs\)/,
      )
      const pairsId = await uploadDataset(t, 'preference_pairs')
      const misfit = assertProblem(
        await post('/v1/runs', { method: 'sso', model_id: tinyId, dataset_ids: [queriesId, pairsId] }),
        400,
        'validation_failed',
        new RegExp(`reads only queries .*'${pairsId}' holds preference pairs`),
      )
      assert.equal(misfit.errors.length, 1)
      assertProblem(
        await post('/v1/runs', { method: 'sft', model_id: tinyId, dataset_ids: [queriesId] }),
        400,
        'validation_failed',
        /'sft' run reads only SFT pairs/,
      )
      const recordsId = await uploadDataset(t, 'sso_records')
      const dpo = await post('/v1/runs', {
        method: 'dpo',
        model_id: tinyId,
        dataset_ids: [pairsId, recordsId],
      })
      assert.equal(dpo.statusCode, 201, dpo.body)
      assert.equal((await post(`/v1/runs/${dpo.json().id}/cancel`, {})).statusCode, 200)
      const runs = await t.app.inject({ url: '/v1/runs?method=sso', headers: auth(t.keys.read) })
      assert.equal(runs.json().items.length, 0, 'no refused run was stored')
    })

    test('a dataset with a bad line reports that line number', async () => {
      const lines = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ prompt: `question ${i}` }))
      lines[1233] = '{"prompt": 42}'
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=q&format=queries',
        headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
        payload: lines.join('\n'),
      })
      const body = assertProblem(res, 422, 'dataset_invalid', /line 1234/)
      assert.equal(body.errors[0].line, 1234)
      const notJson = await t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=q&format=queries',
        headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
        payload: '{"prompt":"a"}\n{oops\n',
      })
      assertProblem(notJson, 422, 'dataset_invalid', /line 2 .*not valid JSON/)
      const badFormat = await t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=q&format=poems',
        headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
        payload: '{"prompt":"a"}\n',
      })
      assertProblem(badFormat, 400, 'validation_failed', /format/)
    })

    test('a model path outside MODELS_ROOT is refused', async () => {
      await mkdir(t.modelsRoot, { recursive: true })
      assertProblem(
        await post('/v1/models', { name: 'escape', path: '../../etc' }),
        400,
        'validation_failed',
        /outside the models root/,
      )
      assertProblem(
        await post('/v1/models', { name: 'abs', path: '/etc' }),
        400,
        'validation_failed',
        /outside the models root/,
      )
      assertProblem(
        await post('/v1/models', { name: 'ghost', path: 'ghost' }),
        400,
        'validation_failed',
        /does not exist/,
      )
      await mkdir(path.join(t.modelsRoot, 'empty'))
      assertProblem(
        await post('/v1/models', { name: 'empty', path: 'empty' }),
        422,
        'model_load_failed',
        /config.json/,
      )
      await mkdir(path.join(t.modelsRoot, 'ok'))
      await writeFile(path.join(t.modelsRoot, 'ok', 'config.json'), JSON.stringify({ model_type: 'llama' }))
      assert.equal((await post('/v1/models', { name: 'ok', path: 'ok' })).statusCode, 201)
      assertProblem(await post('/v1/models', { name: 'ok', path: 'ok' }), 409, 'conflict')
    })

    test('state conflicts are 409: cancelling a finished run, deleting a used principle set', async () => {
      const set = (await post('/v1/principle-sets', { name: 'used', principles })).json()
      const run = (
        await post('/v1/runs', {
          method: 'sso',
          model_id: tinyId,
          principle_set_id: set.id,
          dataset_ids: [queriesId],
        })
      ).json()
      assert.equal((await post(`/v1/runs/${run.id}/cancel`, {})).json().status, 'cancelled')
      assertProblem(await post(`/v1/runs/${run.id}/pause`, {}), 409, 'invalid_state', /cancelled/)
      assertProblem(await post(`/v1/runs/${run.id}/resume`, {}), 409, 'invalid_state')
      assertProblem(
        await t.app.inject({
          method: 'DELETE',
          url: `/v1/principle-sets/${set.id}`,
          headers: auth(t.keys.write),
        }),
        409,
        'conflict',
        /used by 1 run/,
      )
    })

    test('bodies over the limit are 413', async () => {
      const big = { name: 'x'.repeat(2 * 1024 * 1024), principles }
      assertProblem(await post('/v1/principle-sets', big), 413, 'payload_too_large')
    })
  })
}
