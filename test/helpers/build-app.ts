/**
 * The API over a fresh real database for one test: `buildTestApp(t, target)` applies migrations,
 * starts pg-boss, builds the app (not listening unless asked) and creates one key per scope.
 * Everything is closed and the database dropped after the test.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { type App, buildApp } from '../../src/api/app.ts'
import { createApiKey } from '../../src/api/plugins/app/api-key-auth.ts'
import { ensureBuiltinModels } from '../../src/api/routes/v1/models.ts'
import type { StreamLimits } from '../../src/api/stream/run-subscription.ts'
import { type Config, loadConfig } from '../../src/config.ts'
import { createPrisma, type PrismaClient } from '../../src/db/client.ts'
import { ALL_PROJECTS, DEFAULT_PROJECT_ID } from '../../src/db/project-scope.ts'
import { createRepositories, type Repositories } from '../../src/db/repositories.ts'
import { createBoss, type PgBoss } from '../../src/queue/boss.ts'
import { createWorker, type Worker, type WorkerOptions } from '../../src/worker/main.ts'
import { createTestDatabase, type DatabaseTarget, testLog } from './db.ts'

export interface TestApp {
  app: App
  config: Config
  prisma: PrismaClient
  boss: PgBoss
  repos: Repositories
  databaseUrl: string
  dataDir: string
  modelsRoot: string
  keys: { read: string; write: string; admin: string }
  /** Runs `fn` first when the app is torn down (before the database goes): workers, clients. */
  onClose(fn: () => Promise<unknown>): void
  /** Base URL once `listen()` was called. */
  listen(): Promise<string>
}

export interface TestAppOptions {
  env?: Record<string, string>
  streamLimits?: Partial<StreamLimits>
  /** The app's logger (default: none, or the test log when TEST_LOG_LEVEL is set). */
  logger?: FastifyBaseLogger
}

/** `scope` is a test context, or a `suiteScope()` to share one app across a suite. */
export async function buildTestApp(
  scope: { after(fn: () => Promise<void>): void },
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
    // Workers of tests serve the shared queue only, without probing for GPUs.
    WORKER_DEVICES: 'cpu',
    ...options.env,
  })
  const prisma = createPrisma(db.url, 5)
  let boss: PgBoss | undefined
  let app: App | undefined
  // Registered first, so a failure half-way still releases what was started.
  const closeFirst: (() => Promise<unknown>)[] = []
  scope.after(async () => {
    for (const fn of closeFirst.reverse()) await fn()
    await app?.close()
    await boss?.stop({ graceful: false, timeout: 2000 })
    await prisma.$disconnect()
    await db.drop()
    await rm(dataDir, { recursive: true, force: true })
  })
  boss = await createBoss(db.url, testLog)
  app = await buildApp({
    config,
    prisma,
    databaseUrl: db.url,
    boss,
    logger: options.logger ?? (process.env.TEST_LOG_LEVEL ? testLog : false),
    streamLimits: options.streamLimits,
  })
  const repos = createRepositories(prisma)
  await ensureBuiltinModels(repos.models)
  const keys = {
    read: (await createApiKey(repos.apiKeys, 'reader', ['read'], DEFAULT_PROJECT_ID)).key,
    write: (await createApiKey(repos.apiKeys, 'writer', ['write'], DEFAULT_PROJECT_ID)).key,
    // Spans every project, as the first admin key of a service does.
    admin: (await createApiKey(repos.apiKeys, 'admin', ['admin'], ALL_PROJECTS)).key,
  }
  const listening = app
  return {
    app,
    config,
    prisma,
    boss,
    repos,
    databaseUrl: db.url,
    dataDir,
    modelsRoot,
    keys,
    onClose: (fn) => {
      closeFirst.push(fn)
    },
    listen: async () => {
      await listening.listen({ host: '127.0.0.1', port: 0 })
      const address = listening.server.address()
      if (!address || typeof address === 'string') throw new Error('no TCP address')
      return `http://127.0.0.1:${address.port}`
    },
  }
}

/** A worker over the test app's database and queue, polling fast, stopped before the app closes. */
export async function startTestWorker(
  t: TestApp,
  options: Partial<Omit<WorkerOptions, 'config' | 'prisma' | 'boss'>> = {},
): Promise<Worker> {
  const worker = await createWorker({
    config: t.config,
    prisma: t.prisma,
    boss: t.boss,
    log: testLog,
    pollingIntervalSeconds: 0.5,
    ...options,
  })
  t.onClose(() => worker.stop())
  return worker
}

export const auth = (key: string) => ({ authorization: `Bearer ${key}` })

/** A cleanup scope for apps shared by a suite: pass it to buildTestApp in `before`, call `close` in `after`. */
export function suiteScope() {
  const cleanups: (() => Promise<void>)[] = []
  return {
    after: (fn: () => Promise<void>) => {
      cleanups.push(fn)
    },
    close: async () => {
      for (const fn of cleanups.reverse()) await fn()
    },
  }
}

/**
 * A queued sso run on the built-in tiny model, written straight to the repository (no queue job),
 * for tests that drive claims, takeovers or reads themselves.
 */
export async function insertTinyRun(
  repos: Repositories,
  fields: { datasetIds?: string[]; hyperparameters?: Record<string, unknown>; projectId?: string } = {},
) {
  const tiny = (await repos.models.findByName('tiny'))!
  return repos.runs.create({
    method: 'sso',
    modelId: tiny.id,
    principleSetVersionId: null,
    datasetIds: fields.datasetIds ?? [],
    hyperparameters: fields.hyperparameters ?? {},
    device: 'cpu',
    seed: 1,
    metadata: {},
    apiKeyId: null,
    projectId: fields.projectId ?? DEFAULT_PROJECT_ID,
  })
}
