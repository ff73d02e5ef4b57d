/**
 * Run streams over real HTTP: WebSocket and SSE clients, frames written by the worker's path
 * (appendRunFrames: rows + NOTIFY at commit), gap-free resume, first-message auth, slow clients.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import WebSocket from 'ws'
import { appendRunFramesNow, type NewFrame } from '../../src/db/run-frames.ts'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

interface Message {
  type: string
  seq?: number
  step?: number
  data?: Record<string, unknown>
  code?: string
}

/** A WebSocket client that records every message and lets a test wait for a condition. */
class Client {
  readonly messages: Message[] = []
  private waiters: (() => void)[] = []
  readonly ws: WebSocket
  readonly closed: Promise<number>

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers })
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)))
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)))
  }

  get frames() {
    return this.messages.filter((m) => typeof m.seq === 'number')
  }

  async until(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))}`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  close() {
    this.ws.close()
    return this.closed
  }
}

const metricsFrame = (step: number): NewFrame => ({
  type: 'metrics',
  step,
  data: { values: { loss: 1 / step } },
})

for (const target of DATABASE_TARGETS) {
  describe(`run stream (${target})`, () => {
    let t: TestApp
    let base: string
    let wsBase: string
    let tinyId: string
    let queriesId: string
    const scope = suiteScope()
    after(scope.close)
    before(async () => {
      t = await buildTestApp(scope, target, { streamLimits: { heartbeatMs: 200 } })
      base = await t.listen()
      wsBase = base.replace('http', 'ws')
      const models = await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })
      tinyId = models.json().items[0].id
      queriesId = await uploadDataset(t, 'queries')
    })
    const newRun = async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth(t.keys.write),
        payload: { method: 'sso', model_id: tinyId, dataset_ids: [queriesId] },
      })
      return res.json().id as string
    }

    test('backfill then live frames in seq order; reconnect with since_seq or since_step has no gaps or duplicates', async () => {
      const runId = await newRun()
      for (let step = 1; step <= 5; step++) await appendRunFramesNow(t.prisma, runId, [metricsFrame(step)])
      const first = new Client(`${wsBase}/v1/runs/${runId}/stream?since_step=-1`, auth(t.keys.read))
      await first.until(() => first.frames.length === 6, 'backfill') // status frame + 5 metrics
      await appendRunFramesNow(t.prisma, runId, [metricsFrame(6), metricsFrame(7)])
      await first.until(() => first.frames.length === 8, 'live frames')
      assert.deepEqual(
        first.frames.map((f) => f.seq),
        [1, 2, 3, 4, 5, 6, 7, 8],
      )
      await first.until(() => first.messages.some((m) => m.type === 'heartbeat'), 'a heartbeat')
      assert.equal(first.messages[0].type, 'subscribed')
      await first.close()

      // Frames written while disconnected arrive after reconnecting, exactly once.
      await appendRunFramesNow(t.prisma, runId, [
        metricsFrame(8),
        { type: 'info', step: 8, data: { message: 'hello' } },
      ])
      const lastSeq = first.frames.at(-1)!.seq!
      const second = new Client(`${wsBase}/v1/runs/${runId}/stream?since_seq=${lastSeq}`, auth(t.keys.read))
      await second.until(() => second.frames.length === 2, 'frames missed while away')
      assert.deepEqual(
        second.frames.map((f) => f.seq),
        [9, 10],
      )
      await second.close()

      const byStep = new Client(`${wsBase}/v1/runs/${runId}/stream?since_step=6`, auth(t.keys.read))
      await byStep.until(() => byStep.frames.length === 3, 'frames after step 6')
      assert.deepEqual(
        byStep.frames.map((f) => f.step),
        [7, 8, 8],
      )
      await byStep.close()
    })

    test('many concurrent writers and readers: every reader sees every frame once, in order', async () => {
      const runId = await newRun()
      const clients = Array.from(
        { length: 5 },
        () => new Client(`${wsBase}/v1/runs/${runId}/stream`, auth(t.keys.read)),
      )
      await Promise.all(clients.map((c) => c.until(() => c.messages.length > 0, 'subscribed')))
      await Promise.all(
        Array.from({ length: 4 }, (_, w) =>
          (async () => {
            for (let i = 0; i < 10; i++)
              await appendRunFramesNow(t.prisma, runId, [metricsFrame(w * 100 + i)])
          })(),
        ),
      )
      for (const c of clients) {
        await c.until(() => c.frames.length === 41, 'all frames')
        assert.deepEqual(
          c.frames.map((f) => f.seq),
          Array.from({ length: 41 }, (_, i) => i + 1),
        )
        await c.close()
      }
    })

    test('the key may come as ?api_key= or in the first message; a bad one closes with an error', async () => {
      const runId = await newRun()
      const byQuery = new Client(`${wsBase}/v1/runs/${runId}/stream?api_key=${t.keys.read}`)
      await byQuery.until(() => byQuery.frames.length === 1, 'status frame')
      await byQuery.close()

      const byMessage = new Client(`${wsBase}/v1/runs/${runId}/stream`)
      byMessage.ws.on('open', () =>
        byMessage.ws.send(JSON.stringify({ type: 'subscribe', api_key: t.keys.read, since_step: -1 })),
      )
      await byMessage.until(() => byMessage.frames.length === 1, 'status frame')
      await byMessage.close()

      const wrong = new Client(`${wsBase}/v1/runs/${runId}/stream`)
      wrong.ws.on('open', () => wrong.ws.send(JSON.stringify({ type: 'subscribe', api_key: 'sso_wrong' })))
      assert.equal(await wrong.closed, 4401)
      assert.equal(wrong.messages[0].code, 'unauthorized')

      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${wsBase}/v1/runs/00000000-0000-4000-8000-000000000000/stream`, {
          headers: auth(t.keys.read),
        })
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('error', () => {})
      })
      assert.equal(status, 404)
    })

    test('Server-Sent Events carry the same frames with ids, and Last-Event-ID resumes', async () => {
      const runId = await newRun()
      await appendRunFramesNow(t.prisma, runId, [metricsFrame(1), metricsFrame(2)])
      const read = (headers: Record<string, string>) =>
        new Promise<string>((resolve, reject) => {
          const req = http.get(
            `${base}/v1/runs/${runId}/stream`,
            { headers: { ...auth(t.keys.read), ...headers } },
            (res) => {
              assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
              let text = ''
              res.on('data', (chunk) => {
                text += chunk
                if ((text.match(/^id: /gm) ?? []).length >= 3 - Number(headers['last-event-id'] ?? 0)) {
                  req.destroy()
                  resolve(text)
                }
              })
            },
          )
          req.on('error', reject)
        })
      const all = await read({})
      assert.deepEqual(
        [...all.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
        [1, 2, 3],
      )
      const resumed = await read({ 'last-event-id': '2' })
      assert.deepEqual(
        [...resumed.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
        [3],
      )
    })
  })
}

describe('slow clients', () => {
  test('a client that stops reading is dropped to a resync, then receives every frame it missed', async (tt) => {
    const t = await buildTestApp(tt, 'embedded', {
      streamLimits: { highWaterBytes: 16 * 1024, lowWaterBytes: 1024 },
    })
    const base = (await t.listen()).replace('http', 'ws')
    const tiny = (await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })).json().items[0].id
    const runId = (
      await t.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth(t.keys.write),
        payload: { method: 'sso', model_id: tiny, dataset_ids: [await uploadDataset(t, 'queries')] },
      })
    ).json().id
    const fast = new Client(`${base}/v1/runs/${runId}/stream`, auth(t.keys.read))
    const slow = new Client(`${base}/v1/runs/${runId}/stream`, auth(t.keys.read))
    await Promise.all([fast, slow].map((c) => c.until(() => c.frames.length === 1, 'first frame')))
    // Stop reading on the slow client's socket, so the server's buffer for it fills up.
    const socket = (slow.ws as unknown as { _socket: import('node:net').Socket })._socket
    socket.pause()
    // Large enough to exceed the loopback socket buffers (several MiB) as well as the server's high-water mark.
    const padding = 'x'.repeat(40_000)
    for (let i = 0; i < 20; i++) {
      await appendRunFramesNow(
        t.prisma,
        runId,
        Array.from({ length: 10 }, (_, j) => ({ type: 'metrics', step: i * 10 + j + 1, data: { padding } })),
      )
    }
    await fast.until(() => fast.frames.length === 201, 'all frames on the fast client')
    socket.resume()
    await slow.until(() => slow.frames.length === 201, 'all frames on the slow client after resync', 20_000)
    assert.ok(
      slow.messages.some((m) => m.type === 'resync'),
      'the slow client got a resync',
    )
    assert.deepEqual(
      slow.frames.map((f) => f.seq),
      Array.from({ length: 201 }, (_, i) => i + 1),
    )
    assert.ok(t.app.streamStats.droppedFrames > 0)
    await fast.close()
    await slow.close()
  })
})
