/**
 * `sso admin-key`, the recovery path for a lost admin key: it writes a new admin key straight into the
 * database, sharing the embedded PostgreSQL of a running service (left running) or using DATABASE_URL.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { hashApiKey } from '../../src/api/plugins/app/api-key-auth.ts'
import { createPrisma } from '../../src/db/client.ts'
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { createRepositories } from '../../src/db/repositories.ts'
import { createTestDatabase, DATABASE_TARGETS, stopEmbeddedServer, testLog } from '../helpers/db.ts'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))
const made: string[] = []

after(async () => {
  await stopEmbeddedServer()
  for (const dir of made) await rm(dir, { recursive: true, force: true })
})

function adminKey(env: Record<string, string>, cwd: string) {
  const { DATABASE_URL: _url, DATA_DIR: _dir, ...inherited } = process.env
  const r = spawnSync(process.execPath, [BIN, 'admin-key'], {
    cwd,
    env: { ...inherited, LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The key is an active admin key in the database at `url`. */
async function assertAdminKey(url: string, key: string): Promise<void> {
  const prisma = createPrisma(url)
  try {
    const found = await createRepositories(prisma).apiKeys.findActiveByHash(hashApiKey(key))
    assert.ok(found, 'the printed key is in the database')
    assert.deepEqual(found.scopes, ['admin'])
    assert.equal(found.name, 'admin (recovered)')
  } finally {
    await prisma.$disconnect()
  }
}

describe('sso admin-key', { timeout: 240_000 }, () => {
  test('shares the embedded PostgreSQL of a running service in DATA_DIR and leaves it running', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'sso-admin-key-'))
    made.push(dataDir)
    await chmod(dataDir, 0o755)
    // This test process plays the running service: it owns the server in DATA_DIR/postgres.
    const server = await startEmbeddedPostgres(path.join(dataDir, 'postgres'), testLog)
    try {
      const r = adminKey({ DATA_DIR: dataDir }, dataDir)
      assert.equal(r.code, 0, r.stderr)
      const key = r.stdout.trim()
      assert.match(key, /^sso_[A-Za-z0-9_-]{43}$/)
      assert.match(r.stderr, /created admin API key 'admin \(recovered\)'/)
      await assertAdminKey(server.url, key)
    } finally {
      await server.stop()
    }
  })

  for (const target of DATABASE_TARGETS) {
    test(`writes to DATABASE_URL (${target})`, async (t) => {
      const db = await createTestDatabase(target)
      t.after(db.drop)
      const r = adminKey({ DATABASE_URL: db.url }, tmpdir())
      assert.equal(r.code, 0, r.stderr)
      await assertAdminKey(db.url, r.stdout.trim())
    })
  }
})
