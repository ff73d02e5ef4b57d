import path from 'node:path'
import type { Config } from '../config.ts'
import type { Logger } from '../log.ts'
import { createPrisma, type PrismaClient } from './client.ts'
import { startEmbeddedPostgres } from './embedded-postgres.ts'
import { applyMigrations } from './migrate.ts'

export interface Database {
  url: string
  prisma: PrismaClient
  /** Disconnects Prisma, then stops the embedded server when this process started it. */
  close(): Promise<void>
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL in DATA_DIR/postgres when it is unset,
 * and brings the schema up to date.
 */
export async function openDatabase(
  config: Pick<Config, 'DATABASE_URL' | 'dataDir'>,
  log: Logger,
  poolSize?: number,
  /** Share an embedded server another process is running on DATA_DIR (short commands such as `sso admin-key`). */
  options: { attach?: boolean } = {},
): Promise<Database> {
  const embedded = config.DATABASE_URL
    ? null
    : await startEmbeddedPostgres(path.join(config.dataDir, 'postgres'), log, options)
  const url = config.DATABASE_URL ?? embedded!.url
  try {
    await applyMigrations(url, log)
  } catch (e) {
    await embedded?.stop()
    throw e
  }
  const prisma = createPrisma(url, poolSize)
  return {
    url,
    prisma,
    close: async () => {
      await prisma.$disconnect()
      await embedded?.stop()
    },
  }
}
