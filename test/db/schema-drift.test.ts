/**
 * Fails when prisma/schema.prisma and the SQL migrations disagree: the migrations are applied to a
 * fresh database and its catalog is compared with the datamodel Prisma parses from schema.prisma
 * (read through a tiny generator, offline): tables, columns, types, nullability, defaults, primary
 * keys, unique and plain indexes, foreign keys and enums.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import pg from 'pg'
import { createTestDatabase, stopEmbeddedServer } from '../helpers/db.ts'

interface DmmfField {
  name: string
  dbName?: string | null
  kind: 'scalar' | 'object' | 'enum'
  type: string
  isList: boolean
  isRequired: boolean
  hasDefaultValue: boolean
  nativeType: [string, string[]] | null
  relationFromFields?: string[]
  relationToFields?: string[]
  relationOnDelete?: string
}
interface DmmfModel {
  name: string
  dbName: string | null
  fields: DmmfField[]
}
interface Datamodel {
  enums: { name: string; values: { name: string }[] }[]
  models: DmmfModel[]
  indexes: { model: string; type: 'id' | 'unique' | 'normal'; fields: { name: string }[] }[]
}

const root = path.resolve(import.meta.dirname, '../..')

async function readDatamodel(): Promise<Datamodel> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dmmf-'))
  const out = path.join(dir, 'datamodel.json')
  const schema = (await readFile(path.join(root, 'prisma/schema.prisma'), 'utf8')).replace(
    /generator client \{[^}]*\}/,
    `generator dmmf {\n  provider = "node ${path.join(root, 'test/db/dmmf-generator.mjs')}"\n  output = "${out}"\n}`,
  )
  await writeFile(path.join(dir, 'schema.prisma'), schema)
  await promisify(execFile)(
    path.join(root, 'node_modules/.bin/prisma'),
    ['generate', '--schema', path.join(dir, 'schema.prisma')],
    {
      cwd: root,
    },
  )
  return JSON.parse(await readFile(out, 'utf8'))
}

// Postgres type of a scalar field, as Prisma's migrations create it (format_type spelling).
function expectedType(f: DmmfField, enums: Set<string>): string {
  const native = f.nativeType?.[0]
  let base: string
  if (enums.has(f.type)) base = `"${f.type}"`
  else if (native === 'Uuid') base = 'uuid'
  else if (native === 'Timestamptz') base = `timestamp(${f.nativeType![1][0] ?? 6}) with time zone`
  else
    base = {
      String: 'text',
      Int: 'integer',
      BigInt: 'bigint',
      Float: 'double precision',
      Boolean: 'boolean',
      Json: 'jsonb',
      DateTime: 'timestamp(3) without time zone',
    }[f.type]!
  return f.isList ? `${base}[]` : base
}

let datamodel: Datamodel
let client: pg.Client
let dropDb: () => Promise<void>

before(async () => {
  datamodel = await readDatamodel()
  const db = await createTestDatabase('embedded')
  dropDb = db.drop
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})
after(async () => {
  await client.end()
  await dropDb()
  await stopEmbeddedServer()
})

const table = (m: DmmfModel) => m.dbName ?? m.name
const column = (m: DmmfModel, fieldName: string) => {
  const f = m.fields.find((x) => x.name === fieldName)!
  return f.dbName ?? f.name
}

test('every table and column of schema.prisma exists with its type, nullability and default, and nothing else', async () => {
  const enums = new Set(datamodel.enums.map((e) => e.name))
  const { rows } = await client.query(`
    SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
           a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      AND c.relname <> '_prisma_migrations'`)
  const actual = rows.map(
    (r) => `${r.table}.${r.column}: ${r.type}${r.not_null ? ' not null' : ''}${r.default ? ' default' : ''}`,
  )
  const expected = datamodel.models.flatMap((m) =>
    m.fields
      .filter((f) => f.kind !== 'object')
      .map((f) => {
        // Prisma creates scalar lists as nullable columns.
        const notNull = f.isRequired && !f.isList
        return `${table(m)}.${f.dbName ?? f.name}: ${expectedType(f, enums)}${notNull ? ' not null' : ''}${f.hasDefaultValue ? ' default' : ''}`
      }),
  )
  assert.deepEqual(actual.sort(), expected.sort())
})

test('primary keys, unique and plain indexes match', async () => {
  const { rows } = await client.query(`
    SELECT t.relname AS table, ix.indisprimary AS primary, ix.indisunique AS unique,
           array_agg(a.attname::text ORDER BY k.ord) AS columns
    FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
    WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'
    GROUP BY t.relname, ix.indexrelid, ix.indisprimary, ix.indisunique`)
  const kind = (r: { primary: boolean; unique: boolean }) =>
    r.primary ? 'id' : r.unique ? 'unique' : 'normal'
  const actual = rows.map((r) => `${r.table} ${kind(r)} (${r.columns.join(', ')})`)
  const byName = new Map(datamodel.models.map((m) => [m.name, m]))
  const expected = datamodel.indexes.map((ix) => {
    const m = byName.get(ix.model)!
    return `${table(m)} ${ix.type} (${ix.fields.map((f) => column(m, f.name)).join(', ')})`
  })
  assert.deepEqual(actual.sort(), expected.sort())
})

test('foreign keys match the relations, with their delete rules', async () => {
  const { rows } = await client.query(`
    SELECT c.conrelid::regclass::text AS table, c.confrelid::regclass::text AS ref, c.confdeltype AS on_delete,
           (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(n, ord)
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) AS columns
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE c.contype = 'f' AND n.nspname = 'public'`)
  const rule: Record<string, string> = {
    a: 'NoAction',
    r: 'Restrict',
    c: 'Cascade',
    n: 'SetNull',
    d: 'SetDefault',
  }
  const actual = rows.map(
    (r) => `${r.table}(${r.columns.join(', ')}) -> ${r.ref} on delete ${rule[r.on_delete]}`,
  )
  const byName = new Map(datamodel.models.map((m) => [m.name, m]))
  const expected = datamodel.models.flatMap((m) =>
    m.fields
      .filter((f) => f.kind === 'object' && (f.relationFromFields?.length ?? 0) > 0)
      .map((f) => {
        const onDelete = f.relationOnDelete ?? (f.isRequired ? 'Restrict' : 'SetNull')
        const cols = f.relationFromFields!.map((n) => column(m, n)).join(', ')
        return `${table(m)}(${cols}) -> ${table(byName.get(f.type)!)} on delete ${onDelete}`
      }),
  )
  assert.deepEqual(actual.sort(), expected.sort())
})

test('enums have the same values in the same order', async () => {
  const { rows } = await client.query(`
    SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS values
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`)
  assert.deepEqual(
    rows.map((r) => `${r.name}: ${r.values.join(',')}`).sort(),
    datamodel.enums.map((e) => `${e.name}: ${e.values.map((v) => v.name).join(',')}`).sort(),
  )
})
