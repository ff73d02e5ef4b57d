import { PrismaPg } from '@prisma/adapter-pg'
import { Prisma, PrismaClient } from '../generated/prisma/client.ts'

/** A Prisma client or an interactive transaction: what every repository is built over. */
export type Db = PrismaClient | Prisma.TransactionClient

export function createPrisma(databaseUrl: string, poolSize = 10): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize })
  return new PrismaClient({ adapter })
}

export { Prisma, PrismaClient }
