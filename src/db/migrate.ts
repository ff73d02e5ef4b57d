import { createHash, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { AppError } from '../errors.ts'
import type { Logger } from '../log.ts'

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../prisma/migrations')

export interface Migration {
  name: string
  sql: string
  /** SHA-256 hex of migration.sql, as Prisma's schema engine computes it. */
  checksum: string
}

// Prisma's own bookkeeping table, created exactly as `prisma migrate deploy` creates it.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`

// Serialises concurrent starts (API and workers booting together) on one database.
const LOCK_KEY = 72_707_369

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, 'migration.sql')))
    .map((e) => e.name)
    .sort()
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    }),
  )
}

/**
 * Applies pending migrations in order, each in its own transaction, recording them in
 * `_prisma_migrations` so `prisma migrate status/deploy` agrees. Refuses to start when an applied
 * migration's file changed or an earlier attempt failed half-way.
 */
export async function applyMigrations(
  databaseUrl: string,
  log: Logger,
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const migrations = await readMigrations(dir)
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    await client.query(CREATE_MIGRATIONS_TABLE)
    const { rows } = await client.query<{
      migration_name: string
      checksum: string
      finished_at: Date | null
    }>('SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL')
    const applied = new Map(rows.map((r) => [r.migration_name, r]))
    const done: string[] = []
    for (const m of migrations) {
      const previous = applied.get(m.name)
      if (previous?.finished_at) {
        if (previous.checksum !== m.checksum) {
          throw new AppError('internal', `migration ${m.name} was modified after it was applied`, {
            migration: m.name,
            applied: previous.checksum,
            file: m.checksum,
          })
        }
        continue
      }
      if (previous) {
        throw new AppError('internal', `migration ${m.name} failed earlier; resolve it before starting`, {
          migration: m.name,
        })
      }
      await client.query('BEGIN')
      try {
        await client.query(m.sql)
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), now(), 1)`,
          [randomUUID(), m.checksum, m.name],
        )
        await client.query('COMMIT')
      } catch (e) {
        await client.query('ROLLBACK')
        throw new AppError('internal', `migration ${m.name} failed: ${(e as Error).message}`, undefined, {
          cause: e,
        })
      }
      log.info({ migration: m.name }, 'migration applied')
      done.push(m.name)
    }
    return done
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {})
    await client.end()
  }
}
