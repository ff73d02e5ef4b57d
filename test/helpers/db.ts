/**
 * Real Postgres for tests: a fresh database per call, on the embedded server (started once per test
 * process in a temporary folder) and, when TEST_EXTERNAL_DATABASE_URL is set, on that server too.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { applyMigrations } from '../../src/db/migrate.ts'
import { createLogger } from '../../src/log.ts'

type SharedServer = 'embedded' | 'external'
/** A shared server, or `{ server }`: the admin URL of one a test runs itself. */
export type DatabaseTarget = SharedServer | { server: string }

export const DATABASE_TARGETS: SharedServer[] = process.env.TEST_EXTERNAL_DATABASE_URL
  ? ['embedded', 'external']
  : ['embedded']

export interface TestDatabase {
  url: string
  target: DatabaseTarget
  drop(): Promise<void>
}

export const testLog = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent')

let embedded: Promise<{ server: EmbeddedDatabase; dir: string }> | undefined

async function serverUrl(target: DatabaseTarget): Promise<string> {
  if (typeof target === 'object') return target.server
  if (target === 'external') return process.env.TEST_EXTERNAL_DATABASE_URL!
  embedded ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sso-test-pg-'))
    return { server: await startEmbeddedPostgres(dir, testLog), dir }
  })()
  return (await embedded).server.url
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** A new, empty database; `migrate` (default true) applies the committed migrations to it. */
export async function createTestDatabase(target: DatabaseTarget, migrate = true): Promise<TestDatabase> {
  const admin = await serverUrl(target)
  const name = `test_${randomBytes(6).toString('hex')}`
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  await client.query(`CREATE DATABASE ${name}`)
  await client.end()
  const url = withDatabase(admin, name)
  if (migrate) await applyMigrations(url, testLog)
  return {
    url,
    target,
    drop: async () => {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}

/** Stops the embedded server of this test process (call from a top-level `after`). */
export async function stopEmbeddedServer(): Promise<void> {
  if (!embedded) return
  const { server, dir } = await embedded
  embedded = undefined
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
