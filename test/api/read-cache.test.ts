/**
 * The per-process read cache: its bookkeeping on a clock the test moves, then through app.inject
 * against real Postgres, with writes made by this process and by another Prisma client that
 * announces them as a worker or another API process would.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { cacheKey } from '../../src/api/plugins/app/cached-reads.ts'
import { ReadCache } from '../../src/api/read-cache.ts'
import { createPrisma, type PrismaClient } from '../../src/db/client.ts'
import { DEFAULT_PROJECT_ID } from '../../src/db/project-scope.ts'
import { createRepositories } from '../../src/db/repositories.ts'
import type { ResourceChange } from '../../src/db/resource-changes.ts'
import { appendRunFramesNow, type FramesNotification } from '../../src/db/run-frames.ts'
import { transitionRun } from '../../src/queue/run-lifecycle.ts'
import { auth, buildTestApp, insertTinyRun, suiteScope, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

const response = (body: string) => ({ body, etag: `"${body}"` })

describe('ReadCache bookkeeping', () => {
  const clock = { ms: 0 }
  const cacheOn = (ttlMs = 1000) => new ReadCache(ttlMs, () => clock.ms)
  /** One read of `key` that went to the database and got `body`. */
  const read = (cache: ReadCache, key: string, dependency: string, body: string) =>
    cache.finish(key, dependency, cache.begin(key), response(body))
  const body = async (cache: ReadCache, key: string) => (await cache.lookup(key))?.body

  test('a stored response is served until its dependency changes; other dependencies keep theirs', async () => {
    const cache = cacheOn()
    read(cache, '/a', 'run:1', 'a')
    read(cache, '/b', 'run:2', 'b')
    assert.equal(await body(cache, '/a'), 'a')
    cache.changed('run:1')
    assert.equal(await body(cache, '/a'), undefined)
    assert.equal(await body(cache, '/b'), 'b')
    assert.deepEqual({ hits: cache.hits, misses: cache.misses }, { hits: 2, misses: 1 })
  })

  test('a read in flight when its dependency changes is not stored', async () => {
    const cache = cacheOn()
    const ticket = cache.begin('/v1/runs')
    cache.changed('runs')
    cache.finish('/v1/runs', 'runs', ticket, response('old'))
    assert.equal(await body(cache, '/v1/runs'), undefined)
    read(cache, '/v1/runs', 'runs', 'new')
    assert.equal(await body(cache, '/v1/runs'), 'new')
  })

  test('requests for a key whose read is in flight get its response, or query themselves if it fails', async () => {
    const cache = cacheOn()
    const ticket = cache.begin('/a')
    const waiting = cache.lookup('/a')
    cache.finish('/a', 'models', ticket, response('a'))
    assert.equal((await waiting)?.body, 'a')
    assert.deepEqual({ hits: cache.hits, misses: cache.misses }, { hits: 1, misses: 0 })
    cache.changed('models')
    const failing = cache.begin('/a')
    const waitingForFailure = cache.lookup('/a')
    cache.finish('/a', 'models', failing)
    assert.equal(await waitingForFailure, undefined)
    assert.equal(cache.misses, 1)
  })

  test('entries expire after the TTL, counted from when their read began', async () => {
    const cache = cacheOn(1000)
    const ticket = cache.begin('/a')
    clock.ms += 400
    cache.finish('/a', 'models', ticket, response('a'))
    clock.ms += 599
    assert.equal(await body(cache, '/a'), 'a')
    clock.ms += 1
    assert.equal(await body(cache, '/a'), undefined)
  })

  test('clear drops every entry and every read in flight', async () => {
    const cache = cacheOn()
    read(cache, '/a', 'models', 'a')
    const inFlight = cache.begin('/b')
    cache.clear()
    cache.finish('/b', 'datasets', inFlight, response('b'))
    assert.equal(await body(cache, '/a'), undefined)
    assert.equal(await body(cache, '/b'), undefined)
  })

  test('the least recently used entries go when the size bound is reached', async () => {
    const cache = cacheOn()
    const big = 'x'.repeat(1_000_000)
    read(cache, '/first', 'runs', big)
    read(cache, '/second', 'runs', big)
    await cache.lookup('/first')
    for (let i = 0; i < 40; i++) read(cache, `/filler/${i}`, 'runs', big)
    assert.ok(cache.size < 42, `the cache kept ${cache.size} MB-sized entries`)
    assert.equal(await body(cache, '/second'), undefined)
    assert.equal(await body(cache, '/filler/39'), big)
  })

  test('keys: query parameters in name order, the API key left out', () => {
    assert.equal(cacheKey('/v1/runs?status=queued&limit=20&api_key=sso_x'), '/v1/runs?limit=20&status=queued')
    assert.equal(cacheKey('/v1/runs?api_key=sso_x'), '/v1/runs')
    assert.equal(cacheKey('/v1/runs/1/metrics?keys=b&keys=a'), '/v1/runs/1/metrics?keys=b&keys=a')
  })
})

/** Resolves once this app heard a change that `matches`; the read cache, observing first, has dropped it. */
function heard(t: TestApp, matches: (change: FramesNotification | ResourceChange) => boolean) {
  return new Promise<void>((resolve) => {
    const check = (change: FramesNotification | ResourceChange) => {
      if (!matches(change)) return
      stop()
      resolve()
    }
    const stop = t.app.hub.observe({
      runFrames: check,
      resourceChanged: (payload) => check(JSON.parse(payload)),
      disconnected: () => {},
    })
  })
}

const statusFrame = (runId: string, status: string) => (c: FramesNotification | ResourceChange) =>
  'frames' in c && c.run_id === runId && !!c.frames?.some((f) => f.data.status === status)

async function cacheCounters(t: TestApp) {
  const text = (await t.app.inject({ url: '/metrics', headers: auth(t.keys.read) })).body
  const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1])
  return { hits: counter('sso_read_cache_hits_total'), misses: counter('sso_read_cache_misses_total') }
}

for (const target of DATABASE_TARGETS) {
  describe(`read cache in the API (${target})`, () => {
    let t: TestApp
    let other: PrismaClient
    let newRun: () => Promise<{ id: string; status: string }>
    const scope = suiteScope()
    after(scope.close)
    before(async () => {
      t = await buildTestApp(scope, target)
      // Another process: its writes reach this app only as notifications.
      other = createPrisma(t.databaseUrl, 2)
      t.onClose(() => other.$disconnect())
      const tinyId = (await get('/v1/models')).items[0].id
      const queriesId = await uploadDataset(t, 'queries')
      newRun = () =>
        send('POST', '/v1/runs', { method: 'sso', model_id: tinyId, dataset_ids: [queriesId] }, 201)
      // Responses are stored only while changes can be heard.
      await t.app.hub.ready()
    })
    const get = async (url: string) => {
      const res = await t.app.inject({ url, headers: auth(t.keys.read) })
      assert.equal(res.statusCode, 200, res.body)
      return res.json()
    }
    const send = async (method: 'POST' | 'DELETE', url: string, payload?: object, status = 200) => {
      const res = await t.app.inject({ method, url, headers: auth(t.keys.write), payload })
      assert.equal(res.statusCode, status, res.body)
      return res.json()
    }

    test('a write in this process drops the cached reads it changes; the counters move', async () => {
      const run = await newRun()
      const before = await cacheCounters(t)
      assert.equal((await get(`/v1/runs/${run.id}`)).status, 'queued')
      assert.equal((await get(`/v1/runs/${run.id}`)).status, 'queued')
      assert.deepEqual(await cacheCounters(t), { hits: before.hits + 1, misses: before.misses + 1 })
      await send('POST', `/v1/runs/${run.id}/cancel`, {})
      assert.equal((await get(`/v1/runs/${run.id}`)).status, 'cancelled')

      const names = async () => (await get('/v1/principle-sets')).items.map((s: { name: string }) => s.name)
      assert.ok(!(await names()).includes('fresh'))
      const principles = [{ feature: 'clarity', good: 'Write clearly.', bad: 'Write confusingly.' }]
      await send('POST', '/v1/principle-sets', { name: 'fresh', principles }, 201)
      assert.ok((await names()).includes('fresh'))
    })

    test('changes written by another process are seen by the next read once announced', async () => {
      const run = await newRun()
      const otherRepos = createRepositories(other)
      const elsewhere = { prisma: other, boss: t.boss, webhooks: false }
      assert.equal((await get(`/v1/runs/${run.id}`)).status, 'queued')
      assert.equal((await get('/v1/runs?status=running')).items.length, 0)

      // A worker claims the run and starts it (a status frame on the frames channel).
      let announced = heard(t, statusFrame(run.id, 'running'))
      await otherRepos.runs.claim(run.id, 'worker-elsewhere', new Date())
      await transitionRun(elsewhere, run.id, ['queued'], 'running')
      await announced
      const running = await get(`/v1/runs/${run.id}`)
      assert.equal(running.status, 'running')
      assert.equal(running.worker_id, 'worker-elsewhere')
      assert.deepEqual(
        (await get('/v1/runs?status=running')).items.map((r: { id: string }) => r.id),
        [run.id],
      )
      // This process cancels it: at once, no notification needed.
      await send('POST', `/v1/runs/${run.id}/cancel`, {})
      assert.equal((await get(`/v1/runs/${run.id}`)).status, 'cancelling')

      // The worker's heartbeat (a resource change of the run row).
      announced = heard(t, (c) => 'row' in c && c.run_id === run.id && c.row)
      await otherRepos.runs.heartbeat(run.id, 'worker-elsewhere', 42)
      await announced
      assert.equal((await get(`/v1/runs/${run.id}`)).current_step, 42)

      // Frames, samples and checkpoints (the run's results).
      assert.equal((await get(`/v1/runs/${run.id}/events?type=metrics`)).items.length, 0)
      announced = heard(
        t,
        (c) => 'frames' in c && c.run_id === run.id && !!c.frames?.some((f) => f.step === 1),
      )
      await appendRunFramesNow(other, run.id, [{ type: 'metrics', step: 1, data: { values: { loss: 1 } } }])
      await announced
      assert.equal((await get(`/v1/runs/${run.id}/events?type=metrics`)).items.length, 1)
      assert.equal((await get(`/v1/runs/${run.id}/samples`)).items.length, 0)
      announced = heard(t, (c) => 'row' in c && c.run_id === run.id && !c.row)
      await otherRepos.samples.createMany(run.id, 0, [{ instruction: 'q', chosen: 'a', rejected: 'b' }])
      await announced
      assert.equal((await get(`/v1/runs/${run.id}/samples`)).items.length, 1)

      // Another API process creates a principle set (a collection change).
      const before = (await get('/v1/principle-sets')).items.length
      announced = heard(t, (c) => 'collection' in c && c.collection === 'principle_sets')
      await otherRepos.principleSets.create({
        name: 'elsewhere',
        description: '',
        projectId: DEFAULT_PROJECT_ID,
        principles: [{ feature: 'f', good: 'g', bad: 'b' }],
        concision: null,
      })
      await announced
      assert.equal((await get('/v1/principle-sets')).items.length, before + 1)
    })

    test('ETag and If-None-Match: 304 while unchanged, 200 with a new tag after a change', async () => {
      const run = await newRun()
      const url = `/v1/runs/${run.id}`
      const first = await t.app.inject({ url, headers: auth(t.keys.read) })
      const etag = first.headers.etag as string
      assert.match(etag, /^"[\w-]+"$/)
      const cached = await t.app.inject({ url, headers: { ...auth(t.keys.read), 'if-none-match': etag } })
      assert.equal(cached.statusCode, 304)
      assert.equal(cached.body, '')
      await send('POST', `/v1/runs/${run.id}/pause`, {})
      const changed = await t.app.inject({ url, headers: { ...auth(t.keys.read), 'if-none-match': etag } })
      assert.equal(changed.statusCode, 200)
      assert.equal(changed.json().status, 'paused')
      assert.notEqual(changed.headers.etag, etag)
    })

    test('errors are not cached, and the key is checked on every request', async () => {
      const missing = '00000000-0000-4000-8000-000000000000'
      // At once: the later requests wait for the first, which has nothing to hand them.
      const concurrent = await Promise.all(
        [0, 1, 2].map(() => t.app.inject({ url: `/v1/runs/${missing}`, headers: auth(t.keys.read) })),
      )
      for (const res of [
        ...concurrent,
        await t.app.inject({ url: `/v1/runs/${missing}`, headers: auth(t.keys.read) }),
      ]) {
        assert.equal(res.statusCode, 404)
        assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      }
      await get('/v1/runs?limit=1')
      assert.equal((await t.app.inject({ url: '/v1/runs?limit=1' })).statusCode, 401)
      const wrong = await t.app.inject({ url: '/v1/runs?limit=1', headers: auth('sso_not-a-key') })
      assert.equal(wrong.statusCode, 401)
    })

    test('READ_CACHE_TTL_MS=0 disables the cache: a change nobody announces is read at once', async (tt) => {
      const uncached = await buildTestApp(tt, target, { env: { READ_CACHE_TTL_MS: '0' } })
      const run = await insertTinyRun(uncached.repos)
      const step = async () =>
        (await uncached.app.inject({ url: `/v1/runs/${run.id}`, headers: auth(uncached.keys.read) })).json()
          .current_step
      assert.equal(await step(), 0)
      await uncached.prisma.run.update({ where: { id: run.id }, data: { currentStep: 7 } })
      assert.equal(await step(), 7)
      assert.deepEqual(await cacheCounters(uncached), { hits: 0, misses: 0 })
    })
  })
}
