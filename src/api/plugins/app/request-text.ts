/**
 * Request values the database can store: UTF-8 bodies only (no other charset, no BOM, no invalid
 * bytes), no NUL characters or lone surrogates in any string of a query, path or body (Postgres
 * text and jsonb cannot hold them), finite numbers, and JSON at most MAX_JSON_DEPTH levels deep. Refused
 * with 400 or 415 before a handler runs.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { LONE_SURROGATE } from '../../../db/storable.ts'
import { AppError, ValidationError } from '../../../errors.ts'

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Content types whose body is text: the dataset upload route reads them as JSONL. */
const TEXT_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/plain']

/**
 * Deepest nesting of objects and arrays a body may have. JSON.parse takes any depth, but the walk
 * below and the schema validators recurse, so a body nested thousands of levels would overflow their
 * stacks; no request of this API needs more than a handful.
 */
const MAX_JSON_DEPTH = 64

/** Why a string cannot be stored, or undefined when it can. */
function unstorable(s: string): string | undefined {
  if (s.includes('\0')) return 'contains a NUL character'
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate'
  return undefined
}

/**
 * The path of the first string (key or value) in `value` that cannot be stored, or of the first value
 * nested deeper than MAX_JSON_DEPTH, with the reason.
 */
export function findUnstorable(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') {
    const why = unstorable(value)
    return why && `${path}: ${why}`
  }
  if (value === null || typeof value !== 'object') return undefined
  // The path down to here has MAX_JSON_DEPTH segments; its first few say where.
  if (depth === MAX_JSON_DEPTH)
    return `${path.split('/').slice(0, 4).join('/')}/…: nested deeper than ${MAX_JSON_DEPTH} levels`
  for (const [key, item] of Object.entries(value)) {
    const why = unstorable(key)
    if (why) return `${path}: a field name ${why}`
    const found = findUnstorable(item, `${path}/${key}`, depth + 1)
    if (found) return found
  }
  return undefined
}

/**
 * Lines of JSONL text whose values hold a string Postgres cannot store (a NUL, raw or escaped as
 * \u0000, or a lone surrogate), with the reason; lines that are not JSON are left to the format check.
 */
export function unstorableLines(text: string, max = 10): { line: number; message: string }[] {
  const found: { line: number; message: string }[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length && found.length < max; i++) {
    // Only a raw NUL or an escape can produce such a string; most lines skip the parse.
    if (!lines[i].includes('\0') && !lines[i].includes('\\u')) continue
    let value: unknown
    try {
      value = JSON.parse(lines[i])
    } catch {
      value = lines[i]
    }
    const why = findUnstorable(value, 'record')
    if (why) found.push({ line: i + 1, message: why })
  }
  return found
}

/** 1-based numbers of the lines of `body` that are not valid UTF-8 (at most `max`). */
function invalidUtf8Lines(body: Buffer, max = 10): number[] {
  const lines: number[] = []
  let start = 0
  for (let line = 1; start <= body.length && lines.length < max; line++) {
    const end = body.indexOf(0x0a, start)
    const stop = end < 0 ? body.length : end
    try {
      fatalUtf8.decode(body.subarray(start, stop))
    } catch {
      lines.push(line)
    }
    if (end < 0) break
    start = end + 1
  }
  return lines
}

/** The body as text; refuses a BOM and bytes that are not UTF-8, naming the lines that hold them. */
export function decodeBody(body: Buffer): string {
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf)
    throw new ValidationError('the body starts with a byte order mark; send UTF-8 without one')
  try {
    return fatalUtf8.decode(body)
  } catch {
    const lines = invalidUtf8Lines(body)
    throw new ValidationError(`the body is not valid UTF-8 (line ${lines.join(', ')})`, {
      errors: lines.map((line) => ({ line, message: 'not valid UTF-8' })),
    })
  }
}

/** Refuses a declared charset other than UTF-8: the body would be read as the wrong text. */
function checkCharset(request: FastifyRequest): void {
  const type = request.headers['content-type']
  const charset = type && /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1]
  if (charset && !/^utf-?8$/i.test(charset))
    throw new AppError('unsupported_media_type', `charset '${charset}' is not supported; send UTF-8`)
}

export const requestTextPlugin = fp(
  async (app: FastifyInstance) => {
    const parseJson = app.getDefaultJsonParser('error', 'error')
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      // Clients that send `content-type: application/json` on every request send it on a DELETE
      // or an action without a body too: no bytes is no body (a route that needs one says so).
      if ((body as Buffer).length === 0) return done(null, undefined)
      let text: string
      try {
        checkCharset(request)
        text = decodeBody(body as Buffer)
      } catch (e) {
        return done(e as Error, undefined)
      }
      parseJson(request, text, done)
    })
    app.addContentTypeParser(TEXT_TYPES, { parseAs: 'buffer' }, (request, body, done) => {
      try {
        checkCharset(request)
        done(null, decodeBody(body as Buffer))
      } catch (e) {
        done(e as Error, undefined)
      }
    })
    app.addHook('preValidation', async (request) => {
      const found =
        findUnstorable(request.params, 'params') ??
        findUnstorable(request.query, 'querystring') ??
        // Text bodies (JSONL) are checked line by line by their route.
        (typeof request.body === 'string' ? undefined : findUnstorable(request.body, 'body'))
      if (found) throw new ValidationError(found)
    })
    // Ajv turns `?limit=Infinity` into a number and then skips the bounds of non-finite ones.
    app.addHook('preHandler', async (request) => {
      const parts = { querystring: request.query, params: request.params, headers: request.headers }
      for (const [part, values] of Object.entries(parts)) {
        for (const [name, value] of Object.entries((values ?? {}) as Record<string, unknown>)) {
          if (typeof value === 'number' && !Number.isFinite(value))
            throw new ValidationError(`${part}/${name}: must be a finite number`)
        }
      }
    })
  },
  { name: 'request-text' },
)
