/**
 * The embedded server's start changes nothing outside the folder it is given: run as root it either
 * runs (folder reachable by the `postgres` user) or refuses at once with one line saying what to do,
 * and binaries that user cannot reach are linked into the service's folder instead of opening theirs.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import pg from 'pg'
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { canReach, reachableBinaries, serverUser } from '../../src/db/postgres-server-user.ts'
import { testLog } from '../helpers/db.ts'

const isRoot = process.getuid?.() === 0
const made: string[] = []

after(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true })
})

async function tempDir(mode: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sso-embedded-'))
  made.push(dir)
  await chmod(dir, mode)
  return dir
}

/** Modes of `dir` and every folder above it. */
async function ancestorModes(dir: string): Promise<Record<string, number>> {
  const modes: Record<string, number> = {}
  for (let d = dir; ; d = path.dirname(d)) {
    modes[d] = (await stat(d)).mode & 0o7777
    if (d === path.dirname(d)) return modes
  }
}

describe('embedded PostgreSQL start', { timeout: 180_000 }, () => {
  test('runs from a reachable folder and leaves every folder above it as it was', async () => {
    const parent = await tempDir(0o755)
    const before = await ancestorModes(parent)
    const server = await startEmbeddedPostgres(path.join(parent, 'postgres'), testLog)
    try {
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      const { rows } = await client.query('SELECT current_user AS name')
      await client.end()
      assert.equal(rows[0].name, 'postgres')
    } finally {
      await server.stop()
    }
    assert.deepEqual(await ancestorModes(parent), before)
  })

  test('from a 0700 folder: runs, or as root refuses within seconds with one line saying what to do', async () => {
    const parent = await tempDir(0o700)
    const before = await ancestorModes(parent)
    const dir = path.join(parent, 'postgres')
    const started = Date.now()
    if (isRoot) {
      await assert.rejects(startEmbeddedPostgres(dir, testLog), (e: Error) => {
        assert.match(e.message, new RegExp(`cannot enter ${parent}: set DATA_DIR to a folder`))
        assert.match(e.message, /DATABASE_URL/)
        assert.doesNotMatch(e.message, /\n/)
        return true
      })
      assert.ok(Date.now() - started < 30_000, `refused after ${Date.now() - started} ms`)
    } else {
      const server = await startEmbeddedPostgres(dir, testLog)
      await server.stop()
    }
    assert.deepEqual(await ancestorModes(parent), before)
  })

  test('folders the start creates above its own are reachable by the server whatever the umask', async () => {
    const parent = await tempDir(0o755)
    const before = await ancestorModes(parent)
    const umask = process.umask(0o077)
    try {
      const server = await startEmbeddedPostgres(path.join(parent, 'a', 'b', 'postgres'), testLog)
      await server.stop()
    } finally {
      process.umask(umask)
    }
    if (isRoot) {
      assert.equal((await stat(path.join(parent, 'a'))).mode & 0o777, 0o755)
      assert.equal((await stat(path.join(parent, 'a', 'b'))).mode & 0o777, 0o755)
    }
    assert.deepEqual(await ancestorModes(parent), before)
  })

  test('another process is refused the folder while this one uses it', async () => {
    const dir = path.join(await tempDir(0o755), 'postgres')
    const server = await startEmbeddedPostgres(dir, testLog)
    try {
      const module = new URL('../../src/db/embedded-postgres.ts', import.meta.url).href
      const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(module)})
await startEmbeddedPostgres(${JSON.stringify(dir)}, { info() {}, warn() {} }).catch((e) => console.log(e.message))`
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      assert.match(child.stdout, new RegExp(`in ${dir} is in use by process ${process.pid}`), child.stderr)
      // The refused process left the server running.
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      await client.end()
    } finally {
      await server.stop()
    }
  })
})

describe('binaries the server user cannot reach', {
  skip: !isRoot && 'only root runs the server as another user',
  timeout: 60_000,
}, () => {
  test('are linked into the service folder, symlinks kept, their own folder left closed', async () => {
    const user = (await serverUser())!
    const hidden = await tempDir(0o700)
    const native = path.join(hidden, 'pkg', 'native')
    await mkdir(path.join(native, 'bin'), { recursive: true })
    await mkdir(path.join(native, 'lib'))
    await writeFile(path.join(hidden, 'pkg', 'package.json'), '{"version":"1"}')
    await writeFile(path.join(native, 'bin', 'postgres'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })
    await writeFile(path.join(native, 'lib', 'libpq.so.5.18'), 'library')
    await symlink('libpq.so.5.18', path.join(native, 'lib', 'libpq.so.5'))
    const own = await tempDir(0o711)
    assert.equal(await canReach(user, path.join(native, 'bin', 'postgres')), false)

    const linked = await reachableBinaries(user, native, own)
    assert.equal(linked, path.join(own, 'server'))
    assert.equal(await canReach(user, path.join(linked, 'bin', 'postgres')), true)
    assert.equal(await readlink(path.join(linked, 'lib', 'libpq.so.5')), 'libpq.so.5.18')
    assert.equal((await stat(hidden)).mode & 0o777, 0o700)
    // Made once: a second start reuses the linked folder.
    const inode = (await stat(path.join(linked, 'bin'))).ino
    assert.equal(await reachableBinaries(user, native, own), linked)
    assert.equal((await stat(path.join(linked, 'bin'))).ino, inode)
  })
})
