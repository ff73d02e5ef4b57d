import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ResourceChange } from '../../../db/resource-changes.ts'
import type { FramesNotification } from '../../../db/run-frames.ts'
import { etagOf, matchesEtag, ReadCache, type ReadTicket } from '../../read-cache.ts'

/** What a cached response depends on: a run's row, a run's results, or a whole collection. */
const runRow = (id: string) => `run:${id}`
const runResults = (id: string) => `run-results:${id}`

type Params = { id?: string }

/**
 * The cached GET routes and what each response depends on. Responses depend on the key only through
 * its project scope, so one entry serves every key of the same scope whose scope check passed.
 */
const CACHED_ROUTES: Record<string, (params: Params) => string> = {
  '/v1/runs': () => 'runs',
  '/v1/runs/:id': (p) => runRow(p.id!),
  '/v1/runs/:id/events': (p) => runResults(p.id!),
  '/v1/runs/:id/metrics': (p) => runResults(p.id!),
  '/v1/runs/:id/samples': (p) => runResults(p.id!),
  '/v1/runs/:id/checkpoints': (p) => runResults(p.id!),
  '/v1/principle-sets': () => 'principle_sets',
  '/v1/principle-sets/:id': () => 'principle_sets',
  '/v1/datasets': () => 'datasets',
  '/v1/datasets/:id': () => 'datasets',
  '/v1/models': () => 'models',
  '/v1/models/:id': () => 'models',
}

/** The answer to a cached GET whose If-None-Match holds the current ETag (an empty body). */
const NOT_MODIFIED = {
  type: 'null',
  description: 'Not Modified: If-None-Match holds the ETag of the current response (sent with every 200)',
}

/**
 * What a write request of this process may have changed, from its route. Creating a run also locks
 * the principle-set version it uses.
 */
function changedBy(routeUrl: string, params: Params): string[] {
  const resource = routeUrl.split('/')[2]
  if (resource === 'runs')
    return params.id ? ['runs', runRow(params.id), runResults(params.id)] : ['runs', 'principle_sets']
  if (resource === 'principle-sets') return ['principle_sets']
  if (resource === 'datasets' || resource === 'models') return [resource]
  return []
}

/** Path plus query parameters in name order (repeated names keep their order); the key is left out. */
export function cacheKey(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = [...new URLSearchParams(url.slice(q + 1))]
    .filter(([name]) => name !== 'api_key')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return params.length > 0 ? `${url.slice(0, q)}?${new URLSearchParams(params)}` : url.slice(0, q)
}

interface CacheableRead {
  key: string
  dependency: string
  /** Null while changes cannot be heard: the response is then not stored. */
  ticket: ReadTicket | null
}

declare module 'fastify' {
  interface FastifyInstance {
    readCache: ReadCache
  }
  interface FastifyRequest {
    cacheableRead: CacheableRead | null
  }
}

/**
 * Per-process cache of GET responses (READ_CACHE_TTL_MS; 0 disables it). Runs after the API key
 * check, so every request is still authenticated. A write request of this process drops what its
 * route may change before its response leaves; writes of other processes arrive as notifications
 * (run frames and resource changes, src/db/resource-changes.ts) on the hub's LISTEN connection.
 * Nothing is stored while that connection is down, and all is dropped when it fails. Responses carry
 * an ETag; If-None-Match answers 304.
 */
export const cachedReadsPlugin = fp(
  async (app: FastifyInstance) => {
    const cache = new ReadCache(app.config.READ_CACHE_TTL_MS)
    app.decorate('readCache', cache)
    if (cache.ttlMs === 0) return
    app.addHook('onRoute', (route) => {
      if (route.method !== 'GET' || !CACHED_ROUTES[route.url] || !route.schema?.response) return
      route.schema = {
        ...route.schema,
        response: { ...(route.schema.response as object), 304: NOT_MODIFIED },
      }
    })
    const { hub } = app

    const stopObserving = hub.observe({
      runFrames: (note: FramesNotification) => {
        cache.changed(runResults(note.run_id))
        // A status frame comes with a change of the run row; an oversized batch did not say.
        if (!note.frames || note.frames.some((f) => f.type === 'status')) {
          cache.changed(runRow(note.run_id))
          cache.changed('runs')
        }
      },
      resourceChanged: (payload: string) => {
        let change: ResourceChange
        try {
          change = JSON.parse(payload)
        } catch {
          app.log.warn({ payload: payload.slice(0, 200) }, 'malformed resource change; read cache cleared')
          cache.clear()
          return
        }
        if ('collection' in change) cache.changed(change.collection)
        else if (change.row) {
          cache.changed(runRow(change.run_id))
          cache.changed('runs')
        } else cache.changed(runResults(change.run_id))
      },
      disconnected: () => cache.clear(),
    })
    app.addHook('onClose', async () => stopObserving())

    app.decorateRequest('cacheableRead', null)
    app.addHook('onRequest', async (request: FastifyRequest, reply) => {
      if (request.method !== 'GET') return
      const dependsOn = CACHED_ROUTES[request.routeOptions.url ?? '']
      if (!dependsOn) return
      const key = `${request.projectScope ?? '*'} ${cacheKey(request.url)}`
      const hit = await cache.lookup(key)
      if (hit) {
        reply.header('etag', hit.etag)
        if (matchesEtag(request.headers['if-none-match'], hit.etag)) return reply.code(304).send()
        return reply.type('application/json; charset=utf-8').send(hit.body)
      }
      if (!hub.listening)
        hub.ready().catch((err) => request.log.warn({ err }, 'read cache: cannot listen for changes'))
      request.cacheableRead = {
        key,
        dependency: dependsOn(request.params as Params),
        ticket: hub.listening ? cache.begin(key) : null,
      }
    })

    /** Ends a read without a response to store, so requests waiting for it query themselves. */
    const abandon = async (request: FastifyRequest) => {
      const read = request.cacheableRead
      if (read?.ticket) cache.finish(read.key, read.dependency, read.ticket)
    }
    app.addHook('onResponse', abandon)
    app.addHook('onRequestAbort', abandon)
    app.addHook('onTimeout', abandon)

    app.addHook('onSend', async (request, reply, payload) => {
      const read = request.cacheableRead
      if (read) {
        if (reply.statusCode !== 200 || typeof payload !== 'string') return payload
        const etag = etagOf(payload)
        if (read.ticket) cache.finish(read.key, read.dependency, read.ticket, { body: payload, etag })
        reply.header('etag', etag)
        if (!matchesEtag(request.headers['if-none-match'], etag)) return payload
        reply.code(304)
        return null
      }
      if (request.method !== 'GET' && request.method !== 'HEAD' && request.routeOptions.url) {
        for (const d of changedBy(request.routeOptions.url, request.params as Params)) cache.changed(d)
      }
      return payload
    })
  },
  { name: 'cached-reads', dependencies: ['api-key-auth', 'project-scope'] },
)
