/**
 * The API over a fresh real database for one test: `buildTestApp(t, target)` applies migrations,
 * starts pg-boss, builds the app (not listening unless asked) and creates one key per scope.
 * Everything is closed and the database dropped after the test.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { type App, buildApp } from '../../src/api/app.ts'
import { createApiKey } from '../../src/api/plugins/app/api-key-auth.ts'
import type { StreamLimits } from '../../src/api/stream/run-subscription.ts'
import { loadConfig } from '../../src/config.ts'
import { createPrisma, type PrismaClient } from '../../src/db/client.ts'
import { createRepositories, type Repositories } from '../../src/db/repositories.ts'
import { createBoss, type PgBoss } from '../../src/queue/boss.ts'
import { createTestDatabase, type DatabaseTarget, testLog } from './db.ts'

export interface TestApp {
  app: App
  prisma: PrismaClient
  boss: PgBoss
  repos: Repositories
  databaseUrl: string
  dataDir: string
  modelsRoot: string
  keys: { read: string; write: string; admin: string }
  /** Base URL once `listen()` was called. */
  listen(): Promise<string>
}

export interface TestAppOptions {
  env?: Record<string, string>
  streamLimits?: Partial<StreamLimits>
}

export async function buildTestApp(
  t: TestContext,
  target: DatabaseTarget,
  options: TestAppOptions = {},
): Promise<TestApp> {
  const db = await createTestDatabase(target)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sso-api-'))
  const modelsRoot = path.join(dataDir, 'models-root')
  const config = loadConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    MODELS_ROOT: modelsRoot,
    LOG_LEVEL: 'silent',
    ...options.env,
  })
  const prisma = createPrisma(db.url, 5)
  const boss = await createBoss(db.url, testLog)
  const app = await buildApp({
    config,
    prisma,
    databaseUrl: db.url,
    boss,
    logger: process.env.TEST_LOG_LEVEL ? testLog : false,
    streamLimits: options.streamLimits,
  })
  const repos = createRepositories(prisma)
  const keys = {
    read: (await createApiKey(repos.apiKeys, 'reader', ['read'])).key,
    write: (await createApiKey(repos.apiKeys, 'writer', ['write'])).key,
    admin: (await createApiKey(repos.apiKeys, 'admin', ['admin'])).key,
  }
  t.after(async () => {
    await app.close()
    await boss.stop({ graceful: false, timeout: 2000 })
    await prisma.$disconnect()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  })
  return {
    app,
    prisma,
    boss,
    repos,
    databaseUrl: db.url,
    dataDir,
    modelsRoot,
    keys,
    listen: async () => {
      await app.listen({ host: '127.0.0.1', port: 0 })
      const address = app.server.address()
      if (!address || typeof address === 'string') throw new Error('no TCP address')
      return `http://127.0.0.1:${address.port}`
    },
  }
}

export const auth = (key: string) => ({ authorization: `Bearer ${key}` })
