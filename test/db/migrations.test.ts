import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import pg from 'pg'
import { applyMigrations, MIGRATIONS_DIR, readMigrations } from '../../src/db/migrate.ts'
import { createTestDatabase, DATABASE_TARGETS, stopEmbeddedServer, testLog } from '../helpers/db.ts'

after(stopEmbeddedServer)

for (const target of DATABASE_TARGETS) {
  describe(`migration runner (${target})`, () => {
    test('records each migration in _prisma_migrations with the SHA-256 of its file, once', async (t) => {
      const db = await createTestDatabase(target, false)
      t.after(db.drop)
      const first = await applyMigrations(db.url, testLog)
      const second = await applyMigrations(db.url, testLog)
      const migrations = await readMigrations()
      assert.deepEqual(
        first,
        migrations.map((m) => m.name),
      )
      assert.deepEqual(second, [])
      const client = new pg.Client({ connectionString: db.url })
      await client.connect()
      const { rows } = await client.query(
        'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
      )
      await client.end()
      for (const [i, m] of migrations.entries()) {
        const sql = await readFile(path.join(MIGRATIONS_DIR, m.name, 'migration.sql'))
        assert.equal(rows[i].migration_name, m.name)
        assert.equal(rows[i].checksum, createHash('sha256').update(sql).digest('hex'))
        assert.ok(rows[i].finished_at instanceof Date)
        assert.equal(rows[i].applied_steps_count, 1)
      }
    })

    test('refuses to start when an applied migration file was edited', async (t) => {
      const db = await createTestDatabase(target, false)
      t.after(db.drop)
      const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'))
      await cp(MIGRATIONS_DIR, dir, { recursive: true })
      await applyMigrations(db.url, testLog, dir)
      const [first] = await readMigrations(dir)
      await writeFile(path.join(dir, first.name, 'migration.sql'), `${first.sql}\n-- edited\n`)
      await assert.rejects(applyMigrations(db.url, testLog, dir), /was modified after it was applied/)
    })
  })
}
