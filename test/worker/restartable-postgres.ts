/**
 * A PostgreSQL server of its own for outage tests: it can be stopped and started again on the same
 * port, which the shared embedded server of test/helpers/db.ts (and the machine's server) must not be.
 */
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts'
import { createLogger } from '../../src/log.ts'

export interface RestartablePostgres {
  /** Admin URL (database `postgres`). */
  url: string
  start(): Promise<void>
  stop(): Promise<void>
  /** Stops the server and removes its folder. */
  remove(): Promise<void>
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  // A folder the start itself creates, so that it may open it to the server's user when run as root.
  const dir = path.join(tmpdir(), `sso-outage-pg-${randomUUID()}`)
  const log = createLogger('silent')
  const port = await freePort()
  let server: EmbeddedDatabase | undefined = await startEmbeddedPostgres(dir, log, { port })
  const url = server.url
  return {
    url,
    start: async () => {
      server = await startEmbeddedPostgres(dir, log, { port })
    },
    stop: async () => {
      await server?.stop()
      server = undefined
    },
    remove: async () => {
      await server?.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
