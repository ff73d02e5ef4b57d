/**
 * The full flow with the real SSO trainer on the built-in tiny model: principle set, dataset, run,
 * losses over the WebSocket, reconnect without gaps or duplicates, pause and resume from the
 * checkpoint, cancel, then metrics and checkpoints.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import WebSocket from 'ws'
import { auth, buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { uploadQueries } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

interface Frame {
  type: string
  seq: number
  step: number
  data: { values?: Record<string, number>; status?: string }
}

function follow(url: string, key: string) {
  const frames: Frame[] = []
  const ws = new WebSocket(url, { headers: auth(key) })
  ws.on('message', (data) => {
    const m = JSON.parse(String(data))
    if (typeof m.seq === 'number') frames.push(m)
  })
  const until = async (predicate: (f: Frame[]) => boolean, what: string, ms = 120_000) => {
    const deadline = Date.now() + ms
    while (!predicate(frames)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; last frames ${JSON.stringify(frames.slice(-3))}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const close = () =>
    new Promise<void>((resolve) => {
      ws.once('close', () => resolve())
      ws.close()
    })
  return { frames, until, close }
}

const losses = (frames: Frame[]) =>
  frames.filter((f) => f.type === 'metrics' && f.data.values?.loss !== undefined)
const statusIs = (s: string) => (frames: Frame[]) =>
  frames.some((f) => f.type === 'status' && f.data.status === s)

test('sso run on the tiny model: stream, reconnect, pause/resume, cancel, metrics and checkpoints', async (t) => {
  const app = await buildTestApp(t, 'embedded', { env: { EXECUTION_PROVIDER: 'cpu' } })
  await startTestWorker(app, { heartbeatMs: 500 })
  const base = await app.listen()
  const ws = base.replace('http', 'ws')
  const call = async (method: 'GET' | 'POST', url: string, payload?: object, key = app.keys.write) => {
    const res = await app.app.inject({ method, url, headers: auth(key), payload })
    assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`)
    return res.json()
  }

  const set = await call('POST', '/v1/principle-sets', {
    name: 'tone',
    principles: [
      { feature: 'politeness', good: 'Answer politely and warmly.', bad: 'Answer rudely and coldly.' },
      { feature: 'brevity', good: 'Answer in a few words.', bad: 'Answer at great length.' },
    ],
  })
  const prompts = [
    'Say hello.',
    'Name a colour.',
    'Count to three.',
    'Greet a friend.',
    'Describe rain.',
    'Name a fruit.',
  ]
  const queriesId = await uploadQueries(app, prompts)
  const tiny = (await call('GET', '/v1/models')).items.find((m: { name: string }) => m.name === 'tiny')
  const run = await call('POST', '/v1/runs', {
    method: 'sso',
    model_id: tiny.id,
    principle_set_id: set.id,
    dataset_ids: [queriesId],
    device: 'cpu',
    seed: 7,
    hyperparameters: {
      iterations: 20,
      batch_size: 2,
      lr: 1e-3,
      weight_decay: 0,
      max_new_tokens: 4,
      generation_batch_size: 6,
      features_per_query: 1,
      concision_probability: 0,
      checkpoint_every: 1,
    },
  })

  // Losses arrive live.
  const first = follow(`${ws}/v1/runs/${run.id}/stream?since_step=-1`, app.keys.read)
  await first.until((f) => losses(f).length >= 2, 'two loss frames')
  for (const f of losses(first.frames)) assert.ok(Number.isFinite(f.data.values!.loss))
  await first.close()

  // Reconnect from the last frame seen: nothing missed, nothing twice.
  const lastSeq = first.frames.at(-1)!.seq
  const second = follow(`${ws}/v1/runs/${run.id}/stream?since_seq=${lastSeq}`, app.keys.read)
  await second.until((f) => losses(f).length >= 1, 'a loss frame after reconnecting')
  const seqs = [...first.frames, ...second.frames].map((f) => f.seq)
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
  )

  // Pause: the worker checkpoints and lets go; resume continues from that checkpoint.
  await call('POST', `/v1/runs/${run.id}/pause`, {})
  await second.until(statusIs('paused'), 'paused')
  const paused = await call('GET', `/v1/runs/${run.id}`, undefined, app.keys.read)
  assert.equal(paused.status, 'paused')
  const pausedCheckpoints = (await call('GET', `/v1/runs/${run.id}/checkpoints`, undefined, app.keys.read))
    .items
  assert.ok(pausedCheckpoints.length >= 1, 'a checkpoint exists when paused')
  await call('POST', `/v1/runs/${run.id}/resume`, {})
  const stepsBefore = losses(second.frames).length
  const afterPause = (f: Frame[]) =>
    f.slice(f.findIndex((x) => x.type === 'status' && x.data.status === 'paused'))
  await second.until((f) => statusIs('running')(afterPause(f)), 'running again')
  await second.until((f) => losses(f).length > stepsBefore, 'a loss after resuming')

  // Cancel: stops within a step, with a checkpoint.
  await call('POST', `/v1/runs/${run.id}/cancel`, {})
  await second.until(statusIs('cancelled'), 'cancelled')
  await second.close()
  const done = await call('GET', `/v1/runs/${run.id}`, undefined, app.keys.read)
  assert.equal(done.status, 'cancelled')
  assert.ok(done.attempt >= 2, 'the resume was a second attempt')

  const metrics = await call('GET', `/v1/runs/${run.id}/metrics?keys=loss`, undefined, app.keys.read)
  const steps: number[] = metrics.series[0].points.map((p: number[]) => p[0])
  assert.deepEqual(
    steps,
    [...new Set(steps)].sort((a, b) => a - b),
    'one loss per step, in order',
  )
  assert.ok(steps.length >= 3)
  const checkpoints = (await call('GET', `/v1/runs/${run.id}/checkpoints`, undefined, app.keys.read)).items
  const latest = checkpoints.at(-1)
  assert.ok(latest.files.length > 0)
  const weights =
    latest.files.find((f: { name: string }) => f.name.endsWith('.safetensors')) ?? latest.files[0]
  const file = await app.app.inject({
    url: `/v1/runs/${run.id}/checkpoints/${latest.id}/files/${weights.name}`,
    headers: auth(app.keys.read),
  })
  assert.equal(file.statusCode, 200)
  assert.equal(file.rawPayload.length, weights.bytes)
})
