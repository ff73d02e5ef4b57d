/** The /v1 resources through app.inject against real Postgres. */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { appendRunFramesNow } from '../../src/db/run-frames.ts'
import { auth, buildTestApp, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

const principles = [
  { feature: 'clarity', good: 'Write clearly.', bad: 'Write confusingly.' },
  { feature: 'honesty', good: 'Say when unsure.', bad: 'Pretend to know.' },
]

for (const target of DATABASE_TARGETS) {
  describe(`v1 resources (${target})`, () => {
    let t: TestApp
    let tinyId: string
    let queriesId: string
    const scope = suiteScope()
    after(scope.close)
    before(async () => {
      t = await buildTestApp(scope, target)
      tinyId = (await get('/v1/models')).items.find((m: { name: string }) => m.name === 'tiny').id
      queriesId = await uploadDataset(t, 'queries')
    })
    const get = async (url: string) => {
      const res = await t.app.inject({ url, headers: auth(t.keys.read) })
      assert.equal(res.statusCode, 200, res.body)
      return res.json()
    }
    const send = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, status = 200) => {
      const res = await t.app.inject({ method, url, headers: auth(t.keys.write), payload })
      assert.equal(res.statusCode, status, res.body)
      return res.body ? res.json() : null
    }

    test('principle sets: edits change an unused version in place, a used version is frozen', async () => {
      const set = await send('POST', '/v1/principle-sets', { name: 'core', principles }, 201)
      assert.equal(set.version, 1)
      assert.equal(set.locked, false)
      const edited = await send('PATCH', `/v1/principle-sets/${set.id}`, {
        principles: principles.slice(0, 1),
      })
      assert.equal(edited.version, 1)
      assert.equal(edited.principles.length, 1)
      await send(
        'POST',
        '/v1/runs',
        { method: 'sso', model_id: tinyId, principle_set_id: set.id, dataset_ids: [queriesId] },
        201,
      )
      assert.equal((await get(`/v1/principle-sets/${set.id}`)).locked, true)
      const v2 = await send('PATCH', `/v1/principle-sets/${set.id}`, { principles, description: 'both' })
      assert.equal(v2.version, 2)
      assert.equal(v2.locked, false)
      assert.equal(v2.description, 'both')
      const v1 = await get(`/v1/principle-sets/${set.id}?version=1`)
      assert.equal(v1.principles.length, 1, 'version 1 is unchanged')
      const unused = await send('POST', '/v1/principle-sets', { name: 'scratch', principles }, 201)
      await send('DELETE', `/v1/principle-sets/${unused.id}`, undefined, 204)
      assert.equal(
        (await t.app.inject({ url: `/v1/principle-sets/${unused.id}`, headers: auth(t.keys.read) }))
          .statusCode,
        404,
      )
      await send('POST', '/v1/principle-sets', { name: 'another', principles }, 201)
      const page = await get('/v1/principle-sets?limit=1')
      assert.equal(page.items.length, 1)
      assert.ok(page.next_cursor)
    })

    test('models: the built-in tiny model and a local folder under MODELS_ROOT', async () => {
      const dir = path.join(t.modelsRoot, 'org', 'small')
      await mkdir(dir, { recursive: true })
      await writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 64 }))
      const model = await send('POST', '/v1/models', { name: 'small', path: 'org/small' }, 201)
      assert.equal(model.kind, 'local_hf')
      assert.equal(model.config.hidden_size, 64)
      assert.equal((await get(`/v1/models/${model.id}`)).name, 'small')
      assert.ok((await get('/v1/models')).items.some((m: { kind: string }) => m.kind === 'builtin_tiny'))
    })

    test('datasets: JSONL upload with hash and line count, content download', async () => {
      const text = `${[{ prompt: 'a' }, { prompt: 'b' }, { prompt: 'c' }].map((r) => JSON.stringify(r)).join('\n')}\n`
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/datasets?name=qs&format=queries',
        headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
        payload: text,
      })
      assert.equal(res.statusCode, 201, res.body)
      const dataset = res.json()
      assert.equal(dataset.line_count, 3)
      assert.match(dataset.content_hash, /^[0-9a-f]{64}$/)
      assert.equal(dataset.path, undefined, 'the storage path is not exposed')
      const content = await t.app.inject({
        url: `/v1/datasets/${dataset.id}/content`,
        headers: auth(t.keys.read),
      })
      assert.equal(content.body, text)
      const run = await send(
        'POST',
        '/v1/runs',
        { method: 'sso', model_id: tinyId, dataset_ids: [dataset.id] },
        201,
      )
      assert.deepEqual(run.dataset_ids, [dataset.id])
      await send('POST', `/v1/runs/${run.id}/cancel`, {})
    })

    test('runs: defaults filled, list with filters and cursor pages, cancel/pause/resume transitions', async () => {
      const pairsId = await uploadDataset(t, 'preference_pairs')
      const created = []
      for (let i = 0; i < 3; i++) {
        created.push(
          await send(
            'POST',
            '/v1/runs',
            { method: 'dpo', model_id: tinyId, dataset_ids: [pairsId], seed: i, metadata: { batch: 'b1' } },
            201,
          ),
        )
      }
      const run = created[0]
      assert.equal(run.status, 'queued')
      assert.equal(run.hyperparameters.theta_g, 0.1, 'defaults are filled in')
      assert.equal(run.hyperparameters.beta, undefined, 'method-dependent defaults are left to the trainer')
      assert.equal(run.device, 'auto')
      assert.deepEqual(run.metadata, { batch: 'b1' })
      const seen = new Set<string>()
      let cursor: string | null = null
      do {
        const page: { items: { id: string; method: string }[]; next_cursor: string | null } = await get(
          `/v1/runs?method=dpo&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        )
        for (const r of page.items) {
          assert.equal(r.method, 'dpo')
          assert.ok(!seen.has(r.id), 'no run appears on two pages')
          seen.add(r.id)
        }
        cursor = page.next_cursor
      } while (cursor)
      assert.equal(seen.size, 3)
      const future = new Date(Date.now() + 60_000).toISOString()
      assert.equal((await get(`/v1/runs?created_after=${encodeURIComponent(future)}`)).items.length, 0)

      assert.equal((await send('POST', `/v1/runs/${run.id}/pause`, {})).status, 'paused')
      assert.equal((await get('/v1/runs?status=paused')).items[0].id, run.id)
      assert.equal((await send('POST', `/v1/runs/${run.id}/resume`)).status, 'queued')
      assert.equal((await send('POST', `/v1/runs/${run.id}/cancel`, {})).status, 'cancelled')
      const events = await get(`/v1/runs/${run.id}/events?type=status`)
      assert.deepEqual(
        events.items.map((e: { data: { status: string } }) => e.data.status),
        ['queued', 'paused', 'queued', 'cancelled'],
      )
      const seqs = (await get(`/v1/runs/${run.id}/events?limit=2`)).items.map((e: { seq: number }) => e.seq)
      assert.deepEqual(seqs, [1, 2])
      const rest = await get(`/v1/runs/${run.id}/events?after_seq=2`)
      assert.deepEqual(
        rest.items.map((e: { seq: number }) => e.seq),
        [3, 4],
      )
    })

    test('per-key limit of active runs', async (tt) => {
      const limited = await buildTestApp(tt, target, { env: { MAX_ACTIVE_RUNS_PER_KEY: '1' } })
      const tiny = (await limited.app.inject({ url: '/v1/models', headers: auth(limited.keys.read) })).json()
        .items[0].id
      const body = { method: 'sft', model_id: tiny, dataset_ids: [await uploadDataset(limited, 'sft_pairs')] }
      const first = await limited.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth(limited.keys.write),
        payload: body,
      })
      assert.equal(first.statusCode, 201)
      const second = await limited.app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: auth(limited.keys.write),
        payload: body,
      })
      assert.equal(second.statusCode, 429)
      assert.match(second.json().detail, /limit 1/)
    })

    test('metrics history by key and step range, downsampled; frames written in one batch', async () => {
      const run = await send(
        'POST',
        '/v1/runs',
        { method: 'sso', model_id: tinyId, dataset_ids: [queriesId] },
        201,
      )
      const rows = []
      for (let step = 1; step <= 100; step++) {
        rows.push(
          { runId: run.id, key: 'loss', step, value: 1 / step },
          { runId: run.id, key: 'rewards/margins', step, value: step },
        )
      }
      assert.equal(await t.repos.metrics.createMany(rows), 200)
      assert.equal(await t.repos.metrics.createMany(rows.slice(0, 10)), 0, 'rows already stored are skipped')
      const all = await get(`/v1/runs/${run.id}/metrics`)
      assert.deepEqual(
        all.series.map((s: { key: string }) => s.key),
        ['loss', 'rewards/margins'],
      )
      assert.equal(all.series[0].points.length, 100)
      const range = await get(`/v1/runs/${run.id}/metrics?keys=rewards/margins&step_from=11&step_to=20`)
      assert.equal(range.series.length, 1)
      assert.deepEqual(
        range.series[0].points.map((p: number[]) => p[0]),
        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      )
      const down = await get(`/v1/runs/${run.id}/metrics?keys=rewards/margins&max_points=10`)
      assert.equal(down.series[0].points.length, 10)
      assert.deepEqual(down.series[0].points[0], [10, 5.5], 'each bucket is its mean at its last step')
      const every = await get(`/v1/runs/${run.id}/metrics?max_points=5&step_from=51`)
      assert.deepEqual(
        every.series.map((s: { key: string; points: number[][] }) => [s.key, s.points.map((p) => p[0])]),
        [
          ['loss', [60, 70, 80, 90, 100]],
          ['rewards/margins', [60, 70, 80, 90, 100]],
        ],
        'without keys, every key of the run, bucketed over the range',
      )
      const frames = await appendRunFramesNow(t.prisma, run.id, [
        { type: 'metrics', step: 1, data: { values: { loss: 1 } } },
        { type: 'metrics', step: 2, data: { values: { loss: 0.5 } } },
      ])
      assert.deepEqual(
        frames.map((f) => f.seq),
        [2, 3],
      )
    })

    test('samples and checkpoints with file download', async () => {
      const run = await send(
        'POST',
        '/v1/runs',
        { method: 'sso', model_id: tinyId, dataset_ids: [queriesId] },
        201,
      )
      await t.repos.samples.createMany(run.id, 0, [{ instruction: 'q', chosen: 'a', rejected: 'b' }])
      const samples = await get(`/v1/runs/${run.id}/samples?iteration=0`)
      assert.equal(samples.items[0].record.chosen, 'a')
      const dir = path.join(t.dataDir, 'ckpt')
      await mkdir(dir)
      await writeFile(path.join(dir, 'model.safetensors'), Buffer.from('weights'))
      await writeFile(path.join(dir, 'config.json'), '{}')
      const stored = await t.repos.checkpoints.upsert({
        runId: run.id,
        step: 5,
        iteration: 0,
        kind: 'full',
        dir,
        bytes: 9,
      })
      const list = await get(`/v1/runs/${run.id}/checkpoints`)
      assert.equal(list.items[0].step, 5)
      assert.deepEqual(list.items[0].files.map((f: { name: string }) => f.name).sort(), [
        'config.json',
        'model.safetensors',
      ])
      const file = await t.app.inject({
        url: `/v1/runs/${run.id}/checkpoints/${stored.id}/files/model.safetensors`,
        headers: auth(t.keys.read),
      })
      assert.equal(file.statusCode, 200)
      assert.equal(file.body, 'weights')
      const missing = await t.app.inject({
        url: `/v1/runs/${run.id}/checkpoints/${stored.id}/files/secret.txt`,
        headers: auth(t.keys.read),
      })
      assert.equal(missing.statusCode, 404)
    })

    test('Prometheus metrics and OpenAPI docs', async () => {
      const run = await send(
        'POST',
        '/v1/runs',
        { method: 'sso', model_id: tinyId, dataset_ids: [queriesId], device: 'webgpu' },
        201,
      )
      assert.ok(await t.repos.runs.transition(run.id, ['queued'], 'running'))
      await t.repos.metrics.createMany([
        { runId: run.id, key: 'transfer/host_to_device_bytes', step: 1, value: 9000 },
        { runId: run.id, key: 'transfer/host_to_device_bytes', step: 2, value: 4096 },
        { runId: run.id, key: 'transfer/device_to_host_bytes', step: 2, value: 12 },
        { runId: run.id, key: 'transfer/generated_token_device_to_host_bytes', step: 2, value: 1024 },
      ])
      const counted = (body: string, code: string) =>
        Number(new RegExp(`^sso_http_requests_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(body)?.[1])
      const before = await t.app.inject({ url: '/metrics', headers: auth(t.keys.read) })
      assert.equal((await t.app.inject({ url: '/v1/models', headers: auth(t.keys.read) })).statusCode, 200)
      assert.equal(
        (await t.app.inject({ url: `/v1/models/${randomUUID()}`, headers: auth(t.keys.read) })).statusCode,
        404,
      )
      const res = await t.app.inject({ url: '/metrics', headers: auth(t.keys.read) })
      assert.equal(res.statusCode, 200)
      // Every route's responses count, not only the metrics route's own (the first scrape among them).
      assert.equal(counted(res.body, '2xx') - counted(before.body, '2xx'), 2)
      assert.equal(counted(res.body, '4xx') - counted(before.body, '4xx'), 1)
      for (const name of [
        'sso_queue_depth\\{device="any"\\} \\d+',
        'sso_queue_depth\\{device="cuda"\\} \\d+',
        'sso_active_runs',
        'sso_training_steps_per_second',
        'sso_stream_clients',
        'sso_stream_dropped_frames_total',
        `sso_device_transfer_bytes_per_step\\{run="${run.id}",direction="host_to_device"\\} 4096$`,
        `sso_device_transfer_bytes_per_step\\{run="${run.id}",direction="device_to_host"\\} 12$`,
        `sso_device_transfer_bytes_per_generated_token\\{run="${run.id}",direction="device_to_host"\\} 1024$`,
      ]) {
        assert.match(res.body, new RegExp(`^${name}`, 'm'))
      }
      await t.repos.runs.transition(run.id, ['running'], 'cancelled')
      const docs = await t.app.inject({ url: '/docs/json' })
      assert.equal(docs.statusCode, 200)
      assert.ok(docs.json().paths['/v1/runs'])
    })
  })
}
