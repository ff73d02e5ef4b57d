/**
 * Schema-driven fuzzing of every operation in openapi.yaml (the document the app serves, which
 * test/api/openapi.test.ts holds equal to the committed file) against the real app and Postgres.
 * A fixed seed makes a few thousand requests: valid ones and ones with one hostile part (a path,
 * query or header parameter, a body field, the whole body, the key). Every answer must be below
 * 500 and declared for its operation; errors must be problem+json; 2xx bodies must match the
 * declared schema of their status and content type.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, test } from 'node:test'
import type { InjectOptions } from 'fastify'
import Schema from 'typebox/schema'
import { auth, buildTestApp, type TestApp } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

const SEED = 0x5eed12
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 4000)

type JsonSchema = {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  format?: string
  pattern?: string
  minimum?: number
  maximum?: number
  minLength?: number
  minItems?: number
  items?: JsonSchema | JsonSchema[]
  prefixItems?: JsonSchema[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  anyOf?: JsonSchema[]
  additionalProperties?: boolean | JsonSchema
}
interface Parameter {
  in: 'path' | 'query' | 'header'
  name: string
  required?: boolean
  schema: JsonSchema
}
interface Operation {
  method: string
  path: string
  parameters: Parameter[]
  body?: { contentType: string; schema: JsonSchema }
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>
}

/** mulberry32: a small seeded generator, so a failure reproduces. */
function random(seed: number) {
  let a = seed
  const next = () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
    chance: (p: number) => next() < p,
  }
}
type Random = ReturnType<typeof random>

/** A well-formed id of nothing (v4 layout), from the seeded generator. */
function unknownId(r: Random): string {
  const hex = Array.from({ length: 32 }, () => r.int(16).toString(16)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`
}

/** Hostile parameter texts, already URL-encoded where they go into a URL (bytes that are not UTF-8 too). */
const HOSTILE_TEXT = [
  '',
  'abc',
  'a%00b',
  '%ED%A0%80',
  '%FF%FE',
  '%',
  'Infinity',
  '-Infinity',
  'NaN',
  '-1',
  '0.5',
  '1e308',
  '99999999999999999999',
  '2147483648',
  '-2147483649',
  'true',
  'null',
  '%5B%5D',
  'x'.repeat(2000),
  '..%2F..%2Fetc%2Fpasswd',
  "'%3B%20DROP%20TABLE%20runs%3B--",
]
const HOSTILE_HEADER = [
  '',
  'abc',
  'Infinity',
  'NaN',
  '-1',
  '1e308',
  '99999999999999999999',
  '2147483648',
  ' 7',
]
const HOSTILE_JSON: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2147483648,
  1e20,
  '',
  '1',
  'true',
  'a\u0000b',
  '\ud800',
  'x'.repeat(5000),
  [],
  [null],
  {},
  { nested: { deeper: 'a\u0000' } },
]

/** The seeded resources, by the collection a path or field names. */
type Pools = Record<'runs' | 'datasets' | 'models' | 'principle-sets' | 'api-keys' | 'checkpoints', string[]>

function poolFor(pools: Pools, where: string): string[] {
  if (/model/.test(where)) return pools.models
  if (/dataset/.test(where)) return pools.datasets
  if (/principle/.test(where)) return pools['principle-sets']
  if (/checkpoint/i.test(where)) return pools.checkpoints
  if (/api-keys/.test(where)) return pools['api-keys']
  return pools.runs
}

function resolve(schema: JsonSchema, components: Record<string, JsonSchema>): JsonSchema {
  return schema.$ref ? components[schema.$ref.split('/').pop()!] : schema
}

/** A plausible valid value: enums, defaults and bounds respected, ids from the seeded resources. */
function validValue(
  schema: JsonSchema,
  r: Random,
  pools: Pools,
  field: string,
  components: Record<string, JsonSchema>,
): unknown {
  const s = resolve(schema, components)
  if (s.const !== undefined) return s.const
  if (s.enum) return r.pick(s.enum)
  if (s.anyOf) return validValue(r.pick(s.anyOf), r, pools, field, components)
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type
  switch (type) {
    case 'string':
      if (s.format === 'uuid') return r.pick(poolFor(pools, field))
      if (s.format === 'date-time') return new Date(Date.UTC(2026, 0, 1 + r.int(365))).toISOString()
      return `fuzz${r.int(1_000_000)}`.padEnd(s.minLength ?? 1, 'x')
    case 'integer':
    case 'number': {
      const min = s.minimum ?? 0
      if (s.default !== undefined && r.chance(0.5)) return s.default
      return Math.min(min + r.int(10), s.maximum ?? Number.MAX_SAFE_INTEGER)
    }
    case 'boolean':
      return r.chance(0.5)
    case 'array': {
      if (s.prefixItems) return s.prefixItems.map((item) => validValue(item, r, pools, field, components))
      const item = Array.isArray(s.items) ? s.items[0] : s.items
      const n = Math.max(s.minItems ?? 0, r.int(3))
      const values = Array.from({ length: n }, () => validValue(item ?? {}, r, pools, field, components))
      return [...new Map(values.map((v) => [JSON.stringify(v), v])).values()]
    }
    case 'object': {
      const out: Record<string, unknown> = {}
      for (const [name, prop] of Object.entries(s.properties ?? {})) {
        if (s.required?.includes(name) || r.chance(0.3))
          out[name] = validValue(prop, r, pools, name, components)
      }
      return out
    }
    default:
      return null
  }
}

/** A path into `value` to a field (object key or array index), at any depth. */
function randomPath(value: unknown, r: Random): (string | number)[] {
  const at: (string | number)[] = []
  let current = value
  while (current && typeof current === 'object') {
    const keys = Array.isArray(current) ? current.map((_, i) => i) : Object.keys(current)
    if (keys.length === 0) break
    const key = r.pick(keys as (string | number)[])
    at.push(key)
    current = (current as Record<string | number, unknown>)[key]
    if (r.chance(0.5)) break
  }
  return at
}

function setAt(value: unknown, at: (string | number)[], replacement: unknown, remove = false) {
  let parent = value as Record<string | number, unknown>
  for (const key of at.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  const last = at[at.length - 1]
  if (remove && !Array.isArray(parent)) delete parent[last]
  else parent[last] = replacement
}

interface Built {
  request: InjectOptions & { url: string; method: string }
  mutation: string
}

function buildRequest(
  op: Operation,
  t: TestApp,
  r: Random,
  pools: Pools,
  components: Record<string, JsonSchema>,
): Built {
  const mutation = r.pick(['valid', 'path', 'query', 'header', 'body-field', 'body', 'key'] as const)
  let url = op.path
  const query: string[] = []
  const headers: Record<string, string> = auth(t.keys.admin)
  const pathParams = op.parameters.filter((p) => p.in === 'path')
  const hostileParam = r.pick(
    op.parameters.filter(
      (p) => p.in === (mutation === 'header' ? 'header' : mutation === 'path' ? 'path' : 'query'),
    ),
  ) as Parameter | undefined
  let described: string = mutation
  for (const p of op.parameters) {
    const hostile = p === hostileParam
    if (!hostile && !p.required && r.chance(0.6)) continue
    if (p.in === 'path') {
      const before = op.path.slice(0, op.path.indexOf(`{${p.name}}`))
      const value = hostile
        ? r.pick([...HOSTILE_TEXT, unknownId(r)])
        : encodeURIComponent(String(validValue(p.schema, r, pools, `${before}${p.name}`, components)))
      url = url.replace(`{${p.name}}`, value)
      if (hostile) described = `path ${p.name}=${value.slice(0, 40)}`
    } else if (p.in === 'query') {
      if (p.name === 'api_key') continue
      const value = hostile
        ? r.pick(HOSTILE_TEXT)
        : encodeURIComponent(String(validValue(p.schema, r, pools, p.name, components)))
      query.push(`${p.name}=${value}`)
      if (hostile) described = `query ${p.name}=${value.slice(0, 40)}`
    } else if (hostile) {
      headers[p.name] = r.pick(HOSTILE_HEADER)
      described = `header ${p.name}=${headers[p.name]}`
    }
  }
  for (const p of pathParams) url = url.replace(`{${p.name}}`, unknownId(r))
  if (mutation === 'query' && !hostileParam) {
    query.push(`unknown=${r.pick(HOSTILE_TEXT)}`)
    described = `query ${query.at(-1)!.slice(0, 40)}`
  }
  if (mutation === 'key') {
    const choice = r.pick(['none', 'wrong', 'read', 'query'] as const)
    delete headers.authorization
    if (choice === 'wrong') headers.authorization = 'Bearer sso_wrong'
    if (choice === 'read') Object.assign(headers, auth(t.keys.read))
    if (choice === 'query') query.push(`api_key=${t.keys.admin}`)
    described = `key ${choice}`
  }
  if (query.length > 0) url += `?${query.join('&')}`

  const request: Built['request'] = { method: op.method.toUpperCase(), url, headers }
  if (!op.body) return { request, mutation: described }
  if (op.body.contentType !== 'application/json') {
    headers['content-type'] = op.body.contentType
    const lines: (string | Buffer)[] = ['{"prompt":"fuzz"}\n']
    if (mutation === 'body' || mutation === 'body-field')
      lines.push(
        r.pick([
          '{"prompt":"a\\u0000b"}\n',
          '{"prompt":"\\udc00"}\n',
          Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]),
          '{"prompt":42}\n',
          'not json\n',
          '\u0000\n',
        ]),
      )
    request.payload = Buffer.concat(lines.map((l) => Buffer.from(l)))
    return { request, mutation: `${described} body` }
  }
  headers['content-type'] = 'application/json'
  const body = validValue(op.body.schema, r, pools, '', components) as Record<string, unknown>
  if (mutation === 'body-field' && body && typeof body === 'object') {
    const kind = r.pick(['replace', 'remove', 'extra'] as const)
    const at = randomPath(body, r)
    if (kind === 'extra' || at.length === 0) {
      body[`extra_${r.int(100)}`] = r.pick(HOSTILE_JSON)
      described = 'body extra field'
    } else {
      const replacement = r.pick(HOSTILE_JSON)
      setAt(body, at, replacement, kind === 'remove')
      described = `body ${kind} /${at.join('/')} ${JSON.stringify(replacement)?.slice(0, 30)}`
    }
  }
  request.payload = JSON.stringify(body)
  if (mutation === 'body') {
    const kind = r.pick(['hostile', 'malformed', 'charset', 'bom', 'bytes', 'type'] as const)
    described = `body ${kind}`
    if (kind === 'hostile') request.payload = JSON.stringify(r.pick(HOSTILE_JSON))
    if (kind === 'malformed') request.payload = '{"a":'
    if (kind === 'charset') headers['content-type'] = 'application/json; charset=iso-8859-1'
    if (kind === 'bom')
      request.payload = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(request.payload)])
    if (kind === 'bytes')
      request.payload = Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])
    if (kind === 'type') headers['content-type'] = 'application/xml'
  }
  return { request, mutation: described }
}

/** Status, content type and body; the stream is opened over HTTP and closed after its headers. */
async function send(t: TestApp, base: string, op: Operation, request: Built['request']) {
  if (op.path.endsWith('/stream')) {
    const controller = new AbortController()
    const res = await fetch(base + request.url, {
      headers: request.headers as Record<string, string>,
      // A stream that never answers is a failure, not a hang.
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(10_000)]),
    }).catch((e) => ({ status: 599, headers: new Headers(), text: async () => String(e) }))
    const type = res.headers.get('content-type') ?? ''
    const body = res.status === 200 ? '' : await res.text()
    controller.abort()
    return { status: res.status, type, body }
  }
  const res = await t.app.inject(request)
  return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), body: res.body }
}

test('fuzzing every operation of openapi.yaml: no 5xx, problem+json errors, 2xx bodies as declared', {
  timeout: 300_000,
}, async (tt) => {
  const t = await buildTestApp(tt, 'embedded', {
    env: {
      RATE_LIMIT_PER_MINUTE: '1000000',
      AUTH_FAILURES_PER_MINUTE: '1000000',
      MAX_ACTIVE_RUNS_PER_KEY: '1000000',
      READ_CACHE_TTL_MS: '0',
    },
  })
  const base = await t.listen()

  // Resources for valid ids: a run with a checkpoint of two files, datasets, a principle set.
  const tiny = (await t.repos.models.findByName('tiny'))!
  const queries = await uploadDataset(t, 'queries')
  const pairs = await uploadDataset(t, 'preference_pairs')
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: auth(t.keys.write),
    payload: { method: 'sso', model_id: tiny.id, dataset_ids: [queries] },
  })
  const runId = created.json().id as string
  const dir = path.join(t.dataDir, 'fuzz-checkpoint')
  await mkdir(dir)
  await writeFile(path.join(dir, 'model.safetensors'), 'weights')
  await writeFile(path.join(dir, 'config.json'), '{}')
  const checkpoint = await t.repos.checkpoints.upsert({
    runId,
    step: 1,
    iteration: 0,
    kind: 'full',
    dir,
    bytes: 9,
  })
  const set = await t.app.inject({
    method: 'POST',
    url: '/v1/principle-sets',
    headers: auth(t.keys.write),
    payload: { name: 'fuzz', principles: [{ feature: 'clarity', good: 'Clear.', bad: 'Vague.' }] },
  })
  const sacrificial = await t.app.inject({
    method: 'POST',
    url: '/v1/api-keys',
    headers: auth(t.keys.admin),
    payload: { name: 'fuzzed', scopes: ['read'] },
  })
  const pools: Pools = {
    runs: [runId],
    datasets: [queries, pairs],
    models: [tiny.id],
    'principle-sets': [set.json().id],
    'api-keys': [sacrificial.json().id],
    checkpoints: [checkpoint.id],
  }

  const spec = t.app.swagger() as unknown as {
    paths: Record<
      string,
      Record<string, Operation & { requestBody?: { content: Record<string, { schema: JsonSchema }> } }>
    >
    components: { schemas: Record<string, JsonSchema> }
  }
  const components = spec.components.schemas
  const operations: Operation[] = []
  for (const [route, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content
      const contentType = content && Object.keys(content)[0]
      operations.push({
        method,
        path: route,
        parameters: (op.parameters ?? []) as Parameter[],
        body: contentType ? { contentType, schema: content[contentType].schema } : undefined,
        responses: op.responses,
      })
    }
  }
  assert.ok(operations.length >= 25, `only ${operations.length} operations in the document`)

  const r = random(SEED)
  const failures: string[] = []
  const statuses = new Map<number, number>()
  const valid2xx = new Set<string>()
  for (let i = 0; i < REQUESTS; i++) {
    const op = operations[i % operations.length]
    const { request, mutation } = buildRequest(op, t, r, pools, components)
    const res = await send(t, base, op, request)
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    const where = `#${i} ${request.method} ${request.url.slice(0, 120)} [${mutation}] → ${res.status}`
    const fail = (why: string) => failures.length < 40 && failures.push(`${where}: ${why}`)
    if (res.status >= 500) {
      fail(res.body.slice(0, 200))
      continue
    }
    const declared = op.responses[String(res.status)]
    if (!declared) {
      fail(`status not declared in openapi.yaml (${res.body.slice(0, 120)})`)
      continue
    }
    const type = res.type.split(';')[0].trim()
    if (res.status >= 400) {
      if (type !== 'application/problem+json') fail(`error served as ${res.type}`)
      else if (!Schema.Check(components.Problem as never, JSON.parse(res.body))) fail('body is not a Problem')
      else if (JSON.parse(res.body).status !== res.status) fail('problem status differs')
      continue
    }
    if (res.status === 204) continue
    const schema = declared.content?.[type]?.schema
    if (!schema) {
      fail(`served as ${res.type}, declared ${Object.keys(declared.content ?? {}).join(', ')}`)
      continue
    }
    if (type !== 'application/json') continue
    const [ok, errors] = Schema.Errors(
      components as never,
      resolve(schema, components) as never,
      JSON.parse(res.body),
    )
    if (!ok) fail(`body does not match the schema: ${JSON.stringify(errors.slice(0, 2))}`)
    else valid2xx.add(`${op.method.toUpperCase()} ${op.path}`)
  }
  tt.diagnostic(
    `${REQUESTS} requests over ${operations.length} operations; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
  )
  tt.diagnostic(`${valid2xx.size} operations answered 2xx with a body checked against the schema`)
  assert.deepEqual(failures, [])
  assert.ok(valid2xx.size >= 10, 'too few operations were reached with a valid request')
})
