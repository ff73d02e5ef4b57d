import { PrismaPg } from '@prisma/adapter-pg'
import { Prisma, PrismaClient } from '../generated/prisma/client.ts'

/** A Prisma client or an interactive transaction: what every repository is built over. */
export type Db = PrismaClient | Prisma.TransactionClient

/**
 * Idle pool connections close after this long (pg's default is 10 s): a connection costs Postgres a
 * new process, and a burst of requests after a quiet spell would otherwise open them all again.
 */
const IDLE_CONNECTION_MS = 60_000

export function createPrisma(databaseUrl: string, poolSize = 10): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: poolSize,
    idleTimeoutMillis: IDLE_CONNECTION_MS,
  })
  return new PrismaClient({ adapter })
}

export { Prisma, PrismaClient }
