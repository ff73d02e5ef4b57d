import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ApiKeysRepository } from '../../../db/api-keys-repository.ts'
import { AppError } from '../../../errors.ts'
import type { Logger } from '../../../log.ts'
import type { ApiKeyDto, Scope } from '../../../schemas/api-keys.ts'
import { AuthFailures } from '../../auth-failures.ts'

const KEY_PREFIX = 'sso_'
/**
 * A key lookup is cached this long: a key revoked by another process stops working within
 * this delay, while a busy client costs one lookup per second instead of one per request.
 */
const CACHE_MS = 1_000
const TOUCH_EVERY_MS = 60_000

/** Scopes nest: admin may do everything write may, write everything read may. */
const RANK: Record<Scope, number> = { read: 1, write: 2, admin: 3 }

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url')
}

export async function createApiKey(
  repo: ApiKeysRepository,
  name: string,
  scopes: Scope[],
  projectId: string | null,
  key = generateApiKey(),
) {
  const dto = await repo.create({
    name,
    prefix: key.slice(0, KEY_PREFIX.length + 6),
    hash: hashApiKey(key),
    scopes,
    projectId,
  })
  return { ...dto, key }
}

/** On a database without keys, creates the admin key (BOOTSTRAP_ADMIN_KEY or a new one) and logs it once. */
export async function ensureAdminKey(
  repo: ApiKeysRepository,
  log: Logger,
  bootstrapKey?: string,
): Promise<void> {
  if ((await repo.count()) > 0) return
  const created = await createApiKey(repo, 'admin', ['admin'], null, bootstrapKey)
  log.warn(
    { apiKey: bootstrapKey ? '(BOOTSTRAP_ADMIN_KEY)' : created.key, scopes: created.scopes },
    'created the first admin API key; store it now, it is not shown again',
  )
}

/**
 * The key a request presents: `Authorization: Bearer`, `x-api-key`, or `?api_key=` on the routes
 * that allow it (the stream, for EventSource, which cannot set headers). Elsewhere a key in the
 * URL is not read: URLs end up in logs, proxies and browser history.
 */
export function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim()
  const header = request.headers['x-api-key']
  if (typeof header === 'string' && header !== '') return header
  if (!request.routeOptions.config?.keyInQuery) return undefined
  const query = request.query as { api_key?: unknown } | undefined
  return typeof query?.api_key === 'string' ? query.api_key : undefined
}

/** Whether the URL carries `api_key`, for a clear refusal where it is not read. */
function keyInUrl(request: FastifyRequest): boolean {
  const q = request.url.indexOf('?')
  return q >= 0 && new URLSearchParams(request.url.slice(q + 1)).has('api_key')
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scope a route needs; `public` routes need no key. Default: read for GET/HEAD, write otherwise. */
    scope?: Scope | 'public'
    /** WebSocket routes may authenticate with their first message instead. */
    authOptional?: boolean
    /** The route reads `?api_key=` too. */
    keyInQuery?: boolean
  }
  interface FastifyRequest {
    apiKey: ApiKeyDto | null
  }
  interface FastifyInstance {
    authenticate(key: string | undefined): Promise<ApiKeyDto>
    /** authenticate(), refused with 429 for a client address that presented too many wrong keys. */
    authenticateFrom(address: string, key: string | undefined): Promise<ApiKeyDto>
    requireScope(key: ApiKeyDto, scope: Scope): void
    /** Drops cached key lookups, so a key revoked by this process is refused at once. */
    forgetVerifiedKeys(): void
  }
}

export const apiKeyAuthPlugin = fp(
  async (
    app: FastifyInstance,
    opts: { apiKeys: ApiKeysRepository; publicPaths: RegExp; failuresPerMinute: number },
  ) => {
    // The pending lookup is cached too, so requests arriving during it share it.
    const cache = new Map<string, { key: Promise<ApiKeyDto | null>; until: number }>()
    const touched = new Map<string, number>()

    app.decorate('authenticate', async (presented: string | undefined): Promise<ApiKeyDto> => {
      if (!presented)
        throw new AppError(
          'unauthorized',
          'an API key is required (Authorization: Bearer <key> or x-api-key)',
        )
      const hash = hashApiKey(presented)
      const now = Date.now()
      let entry = cache.get(hash)
      if (!entry || entry.until < now) {
        const pending = { key: opts.apiKeys.findActiveByHash(hash), until: now + CACHE_MS }
        if (cache.size > 10_000) cache.clear()
        cache.set(hash, pending)
        pending.key.catch(() => cache.get(hash) === pending && cache.delete(hash))
        entry = pending
      }
      const key = await entry.key
      if (!key) throw new AppError('unauthorized', 'the API key is not valid (unknown or revoked)')
      if ((touched.get(key.id) ?? 0) + TOUCH_EVERY_MS < now) {
        touched.set(key.id, now)
        opts.apiKeys.touch(key.id).catch((err) => app.log.warn({ err }, 'could not record API key use'))
      }
      return key
    })
    const failures = new AuthFailures(opts.failuresPerMinute)
    app.decorate('authenticateFrom', async (address: string, presented: string | undefined) => {
      const wait = failures.blockedFor(address)
      if (wait > 0)
        throw new AppError(
          'rate_limited',
          `too many wrong API keys from this address; try again in ${Math.ceil(wait / 1000)} s`,
        )
      try {
        return await app.authenticate(presented)
      } catch (e) {
        if (presented && e instanceof AppError && e.code === 'unauthorized') failures.fail(address)
        throw e
      }
    })
    app.decorate('forgetVerifiedKeys', () => cache.clear())
    app.decorate('requireScope', (key: ApiKeyDto, scope: Scope) => {
      if (!key.scopes.some((s) => RANK[s] >= RANK[scope])) {
        throw new AppError(
          'forbidden',
          `this API key has scopes [${key.scopes.join(', ')}]; the request needs '${scope}'`,
          {
            needed: scope,
          },
        )
      }
    })
    app.decorateRequest('apiKey', null)
    app.addHook('onRequest', async (request) => {
      const config = request.routeOptions.config
      const scope =
        config?.scope ?? (request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write')
      if (scope === 'public' || request.is404 || opts.publicPaths.test(request.url.split('?')[0])) return
      const presented = presentedKey(request)
      if (!presented && config?.authOptional) return
      if (!presented && keyInUrl(request))
        throw new AppError(
          'unauthorized',
          '?api_key= is read only by the stream endpoint; send Authorization: Bearer <key> or x-api-key',
        )
      request.apiKey = await app.authenticateFrom(request.ip, presented)
      app.requireScope(request.apiKey, scope)
    })
  },
  { name: 'api-key-auth' },
)
