/**
 * Hostile input is a 4xx problem, never a 5xx: text Postgres cannot store, numbers beyond the
 * columns, wrong JSON types, other charsets, oversized URLs and headers, and the same on streams.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import WebSocket from 'ws'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

function assertProblem(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
) {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  const body = JSON.parse(res.body)
  assert.equal(body.status, status)
  return body as { detail: string; code: string; errors?: { line?: number }[] }
}

/** A raw HTTP request, for what inject() does not go through (Node's parser limits). */
function raw(base: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      http
        .get(`${base}${path}`, { headers }, (res) => {
          let body = ''
          res.on('data', (c) => {
            body += c
          })
          res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }))
        })
        .on('error', reject)
    },
  )
}

describe('hostile input', () => {
  let t: TestApp
  let base: string
  let runId: string
  let tinyId: string
  const scope = suiteScope()
  after(scope.close)
  before(async () => {
    t = await buildTestApp(scope, 'embedded')
    base = await t.listen()
    tinyId = (await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })).json().items[0].id
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: auth(t.keys.write),
      payload: { method: 'sso', model_id: tinyId, dataset_ids: [await uploadDataset(t)] },
    })
    runId = created.json().id
  })
  const json = (method: 'POST' | 'PATCH', url: string, payload: unknown, key = t.keys.admin) =>
    t.app.inject({
      method,
      url,
      headers: { ...auth(key), 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    })
  const get = (url: string) => t.app.inject({ url, headers: auth(t.keys.read) })

  test('a NUL or a lone surrogate in stored text or in a filter is 400 naming where', async () => {
    const principles = [{ feature: 'clarity', good: 'Be clear.', bad: 'Be vague.' }]
    const cases: [LightMyRequestResponse, RegExp][] = [
      [await json('POST', '/v1/api-keys', { name: 'a\u0000b', scopes: ['read'] }), /body\/name: .*NUL/],
      [await json('POST', '/v1/principle-sets', { name: 'a\u0000', principles }), /body\/name/],
      [
        await json('POST', '/v1/principle-sets', {
          name: 'p',
          principles: [{ ...principles[0], good: 'x\u0000' }],
        }),
        /body\/principles\/0\/good/,
      ],
      [
        await json('POST', '/v1/runs', {
          method: 'sso',
          model_id: tinyId,
          metadata: { note: 'half \ud800 a pair' },
        }),
        /body\/metadata\/note: .*surrogate/,
      ],
      [await get(`/v1/runs/${runId}/events?type=a%00b`), /querystring\/type/],
      [await get(`/v1/runs/${runId}/metrics?keys=loss%00`), /querystring\/keys/],
      [
        await t.app.inject({
          method: 'POST',
          url: '/v1/datasets?name=a%00b&format=queries',
          headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
          payload: '{"prompt":"a"}\n',
        }),
        /querystring\/name/,
      ],
    ]
    for (const [res, detail] of cases) assert.match(assertProblem(res, 400).detail, detail)
  })

  test('dataset lines with invalid UTF-8 or an escaped NUL are refused with their line numbers', async () => {
    const upload = (payload: Buffer | string) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=bad&format=queries',
        headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
        payload,
      })
    const invalid = Buffer.concat([
      Buffer.from('{"prompt":"fine"}\n{"prompt":"fine"}\n{"prompt":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}\n'),
    ])
    const utf8 = assertProblem(await upload(invalid), 400)
    assert.match(utf8.detail, /not valid UTF-8 \(line 3\)/)
    assert.equal(utf8.errors?.[0].line, 3)
    const nul = assertProblem(await upload('{"prompt":"ok"}\n{"prompt":"a\\u0000b"}\n'), 422)
    assert.match(nul.detail, /line 2 .*NUL/)
    assert.equal(nul.errors?.[0].line, 2)
  })

  test('numbers beyond an int4 column, Infinity and NaN are 400 on every integer parameter', async () => {
    const bad = ['Infinity', '-Infinity', 'NaN', '1e308', '99999999999999999999', '2147483648']
    const urls = [
      '/v1/runs?limit=',
      '/v1/datasets?limit=',
      `/v1/runs/${runId}/events?after_seq=`,
      `/v1/runs/${runId}/metrics?step_from=`,
      `/v1/runs/${runId}/metrics?step_to=`,
      `/v1/runs/${runId}/samples?offset=`,
      `/v1/runs/${runId}/samples?iteration=`,
    ]
    for (const url of urls) for (const value of bad) assertProblem(await get(url + value), 400)
    assert.equal((await get(`/v1/runs/${runId}/events?after_seq=2147483647`)).statusCode, 200)
  })

  test('stream parameters are checked before the upgrade: WebSocket and SSE answer 400', async () => {
    const wsBase = base.replace('http', 'ws')
    for (const q of ['since_seq=99999999999999999999', 'since_seq=Infinity', 'since_step=1e308']) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${wsBase}/v1/runs/${runId}/stream?${q}`, { headers: auth(t.keys.read) })
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('open', () => resolve(101))
        ws.on('error', () => {})
      })
      assert.equal(status, 400, q)
    }
    for (const lastEventId of ['1e308', 'Infinity', '-1', '99999999999999999999', 'abc']) {
      const res = await raw(base, `/v1/runs/${runId}/stream`, {
        ...auth(t.keys.read),
        'last-event-id': lastEventId,
      })
      assertProblem(res, 400)
    }
  })

  test('JSON bodies are not coerced: wrong types are 400', async () => {
    const run = (hyperparameters: object) =>
      json('POST', '/v1/runs', { method: 'sso', model_id: tinyId, hyperparameters }, t.keys.write)
    assert.match(assertProblem(await run({ lr: '1' }), 400).detail, /lr: must be number/)
    assert.match(assertProblem(await run({ beta: true }), 400).detail, /beta/)
    assert.match(assertProblem(await run({ use_w: null }), 400).detail, /use_w/)
    const named = await json('POST', '/v1/api-keys', { name: 12345, scopes: ['read'] })
    assert.match(assertProblem(named, 400).detail, /name: must be string/)
    const seed = await json('POST', '/v1/runs', { method: 'sso', model_id: tinyId, seed: '7' }, t.keys.write)
    assert.match(assertProblem(seed, 400).detail, /seed/)
    // Query strings are text and are still parsed.
    assert.equal((await get('/v1/runs?limit=2')).statusCode, 200)
  })

  test('a body nested thousands of levels deep is 400, on every JSON route', async () => {
    // JSON.parse takes any depth; the checks after it recurse and overflowed their stacks (500).
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`
    for (const url of ['/v1/runs', '/v1/principle-sets', '/v1/api-keys', '/v1/models', '/v1/projects']) {
      const res = await t.app.inject({
        method: 'POST',
        url,
        headers: { ...auth(t.keys.admin), 'content-type': 'application/json' },
        payload: `{"name":"n","x":${deep}}`,
      })
      assert.match(assertProblem(res, 400).detail, /^body\/x\/0\/0.*: nested deeper than 64 levels$/, url)
    }
    // 64 levels are still read (and refused only for what they hold).
    const shallow = `${'['.repeat(63)}${']'.repeat(63)}`
    const res = await json('POST', '/v1/api-keys', { name: 'k', scopes: ['read'], x: JSON.parse(shallow) })
    assert.doesNotMatch(assertProblem(res, 400).detail, /nested/)
  })

  test('a cursor this API did not return is 400 on every paginated list', async () => {
    const forged = (fields: unknown) => Buffer.from(JSON.stringify(fields)).toString('base64url')
    const cursors = [
      forged(['2026-01-01T00:00:00Z', 'not-a-uuid']),
      forged(['not a date', '00000000-0000-0000-0000-000000000000']),
      forged({}),
      'zzz',
    ]
    for (const list of ['runs', 'datasets', 'models', 'principle-sets']) {
      for (const cursor of cursors) {
        const detail = assertProblem(await get(`/v1/${list}?cursor=${cursor}`), 400).detail
        assert.match(detail, /is not a cursor this API returned/, `${list} ${cursor}`)
      }
    }
  })

  test('a model folder whose config.json cannot be stored is 422 and leaves the model list readable', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`
    const configs: [string, string, RegExp][] = [
      ['array', '[1, 2]', /is not a JSON object but an array/],
      ['number', '7', /is not a JSON object but a number/],
      ['nul', '{"model_type":"llama","x":"a\\u0000b"}', /config\.json\/x: contains a NUL character/],
      [
        'surrogate',
        '{"model_type":"llama","x":"\\ud800"}',
        /config\.json\/x: contains a lone UTF-16 surrogate/,
      ],
      [
        'deep',
        `{"model_type":"llama","x":${deep}}`,
        /config\.json\/x\/0\/0\/…: nested deeper than 64 levels$/,
      ],
      ['huge', ' '.repeat(2 << 20), /is 2097152 bytes; a Hugging Face config is at most 1048576/],
    ]
    for (const [name, text, why] of configs) {
      await mkdir(path.join(t.modelsRoot, 'bad', name), { recursive: true })
      await writeFile(path.join(t.modelsRoot, 'bad', name, 'config.json'), text)
      const res = await json('POST', '/v1/models', { name: `bad-${name}`, path: `bad/${name}` })
      assert.match(assertProblem(res, 422).detail, why, name)
    }
    // A stored array config broke the listing of every model of the project (500).
    const list = await get('/v1/models')
    assert.equal(list.statusCode, 200, list.body)
    assert.ok(!list.json().items.some((m: { name: string }) => m.name.startsWith('bad-')))
  })

  test('a charset other than UTF-8 is 415 and a byte order mark 400', async () => {
    const body = JSON.stringify({ name: 'x', scopes: ['read'] })
    const utf16 = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { ...auth(t.keys.admin), 'content-type': 'application/json; charset=utf-16' },
      payload: body,
    })
    assert.match(assertProblem(utf16, 415).detail, /charset 'utf-16'/)
    const bom = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { ...auth(t.keys.admin), 'content-type': 'application/json' },
      payload: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]),
    })
    assert.match(assertProblem(bom, 400).detail, /byte order mark/)
    const xml = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { ...auth(t.keys.admin), 'content-type': 'application/xml' },
      payload: '<a/>',
    })
    assertProblem(xml, 415)
    const ok = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { ...auth(t.keys.admin), 'content-type': 'application/json; charset=UTF-8' },
      payload: body,
    })
    assert.equal(ok.statusCode, 201)
  })

  test('a JSON content type with no body is no body: actions and deletes work, creates say what is missing', async () => {
    const empty = (method: 'POST' | 'DELETE', url: string) =>
      t.app.inject({ method, url, headers: { ...auth(t.keys.admin), 'content-type': 'application/json' } })
    assert.equal((await empty('POST', `/v1/runs/${runId}/cancel`)).statusCode, 200)
    const key = (await json('POST', '/v1/api-keys', { name: 'short-lived', scopes: ['read'] })).json()
    assert.equal((await empty('DELETE', `/v1/api-keys/${key.id}`)).statusCode, 204)
    assert.match(assertProblem(await empty('POST', '/v1/runs'), 400).detail, /^body: must be object/)
  })

  test('414 and 431 are problem+json and do not echo the URL', async () => {
    const long = `/v1/runs/${'z'.repeat(150)}?api_key=sso_secret`
    const res414 = await raw(base, long, auth(t.keys.read))
    assert.equal(assertProblem(res414, 414).code, 'uri_too_long')
    assert.ok(!res414.body.includes('zzzz') && !res414.body.includes('sso_secret'))
    const res431 = await raw(base, '/v1/runs', { ...auth(t.keys.read), 'x-filler': 'y'.repeat(20_000) })
    assert.equal(assertProblem(res431, 431).code, 'header_too_large')
    const longQuery = await raw(base, `/v1/runs?x=${'q'.repeat(20_000)}`, auth(t.keys.read))
    assert.ok(!assertProblem(longQuery, 431).detail.includes('qqqq'))
  })
})
