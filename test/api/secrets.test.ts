/**
 * Keys stay secret: never in the log, read from the URL only by the stream endpoint, wrong guesses
 * limited per client address, and a revoked key's open streams closed.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { Writable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { pino } from 'pino'
import WebSocket from 'ws'
import { ALL_PROJECTS } from '../../src/db/project-scope.ts'
import { loggerOptions } from '../../src/log.ts'
import { auth, buildTestApp, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

async function newRun(t: TestApp): Promise<string> {
  const models = await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: auth(t.keys.write),
    payload: { method: 'sso', model_id: models.json().items[0].id, dataset_ids: [await uploadDataset(t)] },
  })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().id
}

/** Opens a WebSocket and resolves with its first message. */
function openSocket(url: string, headers: Record<string, string> = {}, first?: object) {
  const ws = new WebSocket(url, { headers })
  const messages: { type: string; code?: string }[] = []
  const closed = new Promise<{ code: number; at: number }>((resolve) =>
    ws.on('close', (code) => resolve({ code, at: Date.now() })),
  )
  const subscribed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      messages.push(JSON.parse(String(data)))
      if (messages.at(-1)!.type === 'subscribed') resolve()
    })
    ws.on('error', reject)
    if (first) ws.on('open', () => ws.send(JSON.stringify(first)))
  })
  return { ws, messages, closed, subscribed }
}

/** Opens an SSE stream; `ended` resolves when the server ends it, with the text received. */
function openSse(url: string, headers: Record<string, string> = {}) {
  let text = ''
  let status = 0
  let req: http.ClientRequest | undefined
  const ended = new Promise<{ text: string; at: number }>((resolve, reject) => {
    req = http.get(url, { headers }, (res) => {
      status = res.statusCode ?? 0
      res.on('data', (chunk) => {
        text += chunk
      })
      res.on('end', () => resolve({ text, at: Date.now() }))
    })
    req.on('error', reject)
  })
  const close = () => req?.destroy()
  const subscribed = (async () => {
    while (!text.includes('"subscribed"')) await new Promise((r) => setTimeout(r, 20))
    return status
  })()
  return { ended, subscribed, close }
}

describe('API keys stay secret', () => {
  test('keys never reach the log: URLs are logged without api_key, auth headers are not logged', async (tt) => {
    const lines: string[] = []
    const capture = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const logger = pino({ ...loggerOptions('trace'), transport: undefined }, capture)
    const t = await buildTestApp(tt, 'embedded', { logger })
    const base = await t.listen()
    const runId = await newRun(t)
    const used = [t.keys.read, t.keys.write, t.keys.admin]

    // Every way a key can be presented, accepted or refused.
    await fetch(`${base}/v1/runs`, { headers: auth(t.keys.read) })
    await fetch(`${base}/v1/runs`, { headers: { 'x-api-key': t.keys.write } })
    await fetch(`${base}/v1/runs?api_key=${t.keys.read}`)
    await fetch(`${base}/v1/runs?limit=2&api%5Fkey=${t.keys.admin}`)
    await fetch(`${base}/v1/no-such-route?api_key=${t.keys.admin}`)
    await fetch(`${base}/v1/runs/${'x'.repeat(120)}?api_key=${t.keys.admin}`)
    await fetch(`${base}/v1/api-keys`, { headers: auth(t.keys.read) })
    const created = await fetch(`${base}/v1/api-keys`, {
      method: 'POST',
      headers: { ...auth(t.keys.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'logged?', scopes: ['read'] }),
    })
    used.push((await created.json()).key)
    const sse = openSse(`${base}/v1/runs/${runId}/stream?api_key=${t.keys.read}`)
    assert.equal(await sse.subscribed, 200)
    const ws = openSocket(`${base.replace('http', 'ws')}/v1/runs/${runId}/stream?api_key=${t.keys.read}`)
    await ws.subscribed
    ws.ws.close()
    await ws.closed
    const wrong = 'sso_this-key-is-wrong-but-still-secret'
    used.push(wrong)
    await fetch(`${base}/v1/runs`, { headers: auth(wrong) })
    sse.close()

    const log = lines.join('')
    assert.match(log, /api_key=\[redacted\]/, 'request URLs are in the log, with the key redacted')
    assert.match(log, /api%5Fkey=\[redacted\]/, 'a percent-encoded parameter name is redacted too')
    for (const key of used) {
      assert.ok(!log.includes(key), `the log holds the key ${key.slice(0, 8)}…`)
      // The secret part alone (after the sso_ prefix) must not appear either.
      assert.ok(!log.includes(key.slice(4)), `the log holds the secret part of ${key.slice(0, 8)}…`)
    }
  })

  test('?api_key= is read only by the stream endpoint; REST answers 401 and says how to send the key', async (tt) => {
    const t = await buildTestApp(tt, 'embedded')
    const base = await t.listen()
    const runId = await newRun(t)
    const rest = await t.app.inject({ url: `/v1/runs/${runId}?api_key=${t.keys.read}` })
    assert.equal(rest.statusCode, 401)
    assert.match(String(rest.headers['content-type']), /^application\/problem\+json/)
    assert.match(rest.json().detail, /only by the stream endpoint.*Authorization: Bearer/)
    const sse = openSse(`${base}/v1/runs/${runId}/stream?api_key=${t.keys.read}`)
    assert.equal(await sse.subscribed, 200)
    sse.close()
  })

  test('revoking a key closes its WebSocket and SSE streams; a revocation by another process too', async (tt) => {
    const t = await buildTestApp(tt, 'embedded')
    const base = await t.listen()
    const wsBase = base.replace('http', 'ws')
    const runId = await newRun(t)
    const newKey = async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: auth(t.keys.admin),
        payload: { name: 'streamer', scopes: ['read'] },
      })
      return res.json() as { id: string; key: string }
    }

    // Revoked through the API of this process: closed at once.
    const doomed = await newKey()
    const byHeader = openSocket(`${wsBase}/v1/runs/${runId}/stream`, auth(doomed.key))
    const byMessage = openSocket(
      `${wsBase}/v1/runs/${runId}/stream`,
      {},
      {
        type: 'subscribe',
        api_key: doomed.key,
      },
    )
    const sse = openSse(`${base}/v1/runs/${runId}/stream`, auth(doomed.key))
    const bystander = openSocket(`${wsBase}/v1/runs/${runId}/stream`, auth(t.keys.read))
    await Promise.all([byHeader.subscribed, byMessage.subscribed, sse.subscribed, bystander.subscribed])
    const revokedAt = Date.now()
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/v1/api-keys/${doomed.id}`,
      headers: auth(t.keys.admin),
    })
    assert.equal(revoked.statusCode, 204)
    const [a, b, c] = await Promise.all([byHeader.closed, byMessage.closed, sse.ended])
    for (const { code } of [a, b]) assert.equal(code, 4401)
    assert.equal(byHeader.messages.at(-1)?.code, 'unauthorized')
    assert.match(c.text, /"code":"unauthorized"/)
    const slowest = Math.max(a.at, b.at, c.at) - revokedAt
    assert.ok(slowest < 2000, `streams closed ${slowest} ms after the revocation`)
    assert.equal(bystander.ws.readyState, WebSocket.OPEN, 'streams of other keys stay open')

    // Revoked in the database by someone else (the CLI, another API process): the periodic check.
    const other = await newKey()
    const watched = openSocket(`${wsBase}/v1/runs/${runId}/stream`, auth(other.key))
    await watched.subscribed
    const at = Date.now()
    await t.repos.apiKeys.revoke(other.id, ALL_PROJECTS)
    const closed = await watched.closed
    assert.equal(closed.code, 4401)
    tt.diagnostic(`closed ${closed.at - at} ms after a revocation by another process`)
    bystander.ws.close()
    await bystander.closed
  })

  test('wrong keys are limited per client address: beyond the allowance every request is 429, valid key or not', async (tt) => {
    const t = await buildTestApp(tt, 'embedded', { env: { AUTH_FAILURES_PER_MINUTE: '5' } })
    for (let i = 0; i < 5; i++) {
      // No key at all is not a guess and does not count.
      assert.equal((await t.app.inject({ url: '/v1/runs' })).statusCode, 401)
      const res = await t.app.inject({ url: '/v1/runs', headers: auth(`sso_guess-${i}`) })
      assert.equal(res.statusCode, 401)
    }
    const limited = await t.app.inject({ url: '/v1/runs', headers: auth('sso_guess-6') })
    assert.equal(limited.statusCode, 429)
    assert.match(String(limited.headers['content-type']), /^application\/problem\+json/)
    assert.equal(limited.json().code, 'rate_limited')
    assert.match(limited.json().detail, /too many wrong API keys/)
    // A right guess now cannot be told from a wrong one.
    assert.equal((await t.app.inject({ url: '/v1/runs', headers: auth(t.keys.read) })).statusCode, 429)
    // Another address is not affected.
    const elsewhere = await t.app.inject({
      url: '/v1/runs',
      headers: auth(t.keys.read),
      remoteAddress: '10.0.0.2',
    })
    assert.equal(elsewhere.statusCode, 200)
  })
})
