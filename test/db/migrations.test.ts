import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import pg from 'pg'
import { applyMigrations, MIGRATIONS_DIR, readMigrations } from '../../src/db/migrate.ts'
import { DEFAULT_PROJECT_ID } from '../../src/db/project-scope.ts'
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

    test('the projects migration moves existing rows to a default project; admin keys span all', async (t) => {
      const db = await createTestDatabase(target, false)
      t.after(db.drop)
      const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'))
      await cp(MIGRATIONS_DIR, dir, { recursive: true })
      const projects = (await readMigrations(dir)).find((m) => m.name.endsWith('_projects'))!
      await rm(path.join(dir, projects.name), { recursive: true })
      await applyMigrations(db.url, testLog, dir)
      const client = new pg.Client({ connectionString: db.url })
      await client.connect()
      const rows = await migrateFilled(client).finally(() => client.end())
      const defaultId = DEFAULT_PROJECT_ID
      assert.deepEqual(rows, [
        { row: 'dataset', project_id: defaultId },
        { row: 'key admin', project_id: null },
        { row: 'key writer', project_id: defaultId },
        { row: 'model mine', project_id: defaultId },
        { row: 'model tiny', project_id: null },
        { row: 'project default', project_id: defaultId },
        { row: 'run', project_id: defaultId },
        { row: 'set', project_id: defaultId },
      ])

      /** Fills the tables as they were, applies the projects migration and reads every row's project. */
      async function migrateFilled(client: pg.Client) {
        await client.query(`
        INSERT INTO api_keys (id, name, prefix, hash, scopes) VALUES
          ('10000000-0000-4000-8000-000000000001', 'admin', 'sso_a', 'ha', '{admin}'),
          ('10000000-0000-4000-8000-000000000002', 'writer', 'sso_w', 'hw', '{write}');
        INSERT INTO models (id, name, kind, path) VALUES
          ('20000000-0000-4000-8000-000000000001', 'tiny', 'builtin_tiny', 'builtin:tiny'),
          ('20000000-0000-4000-8000-000000000002', 'mine', 'local_hf', '/m');
        INSERT INTO datasets (id, name, format, content_hash, line_count, bytes, path) VALUES
          ('30000000-0000-4000-8000-000000000001', 'q', 'queries', 'h', 1, 1, '/d');
        INSERT INTO principle_sets (id, name) VALUES ('40000000-0000-4000-8000-000000000001', 'p');
        INSERT INTO runs (id, method, model_id, dataset_ids, hyperparameters, device, seed) VALUES
          ('50000000-0000-4000-8000-000000000001', 'sso', '20000000-0000-4000-8000-000000000001', '{}', '{}', 'cpu', 1);`)
        await cp(path.join(MIGRATIONS_DIR, projects.name), path.join(dir, projects.name), { recursive: true })
        assert.deepEqual(await applyMigrations(db.url, testLog, dir), [projects.name])
        const { rows } = await client.query(`
        SELECT 'project ' || name AS row, id AS project_id FROM projects UNION ALL
        SELECT 'key ' || name, project_id FROM api_keys UNION ALL
        SELECT 'model ' || name, project_id FROM models UNION ALL
        SELECT 'dataset', project_id FROM datasets UNION ALL
        SELECT 'set', project_id FROM principle_sets UNION ALL
        SELECT 'run', project_id FROM runs ORDER BY row`)
        return rows
      }
    })
  })
}
