import closeWithGrace from 'close-with-grace'
import type { Config } from '../config.ts'
import { openDatabase } from '../db/database.ts'
import { createRepositories } from '../db/repositories.ts'
import { createLogger } from '../log.ts'
import { createBoss, stopBoss } from '../queue/boss.ts'
import { startWebhookDelivery } from '../queue/webhook-delivery.ts'
import { createWorker, type Worker } from '../worker/main.ts'
import { type App, buildApp } from './app.ts'
import { type DemoSetup, ensureDemoResources } from './demo-resources.ts'
import { ensureAdminKey } from './plugins/app/api-key-auth.ts'
import { ensureBuiltinModels } from './routes/v1/models.ts'

export interface RunningServer {
  app: App
  worker: Worker | null
  /** The demo's first-start setup; null when DEMO_RESOURCES is false. */
  demo: DemoSetup | null
  /** Stops the worker (its runs checkpoint and requeue), the API, the queue, then the database. */
  close(): Promise<void>
}

/**
 * `npm start`: Postgres (embedded when DATABASE_URL is unset) with migrations applied, pg-boss, the
 * API on HOST:PORT, and one in-process worker unless IN_PROCESS_WORKER=false. SIGTERM/SIGINT close
 * everything in order, the embedded server included.
 */
export async function startServer(config: Config): Promise<RunningServer> {
  const log = createLogger(config.LOG_LEVEL)
  const db = await openDatabase(config, log, 20)
  const boss = await createBoss(db.url, log)
  const repos = createRepositories(db.prisma)
  await ensureAdminKey(repos.apiKeys, log, config.BOOTSTRAP_ADMIN_KEY)
  await ensureBuiltinModels(repos.models)
  const app = await buildApp({ config, prisma: db.prisma, databaseUrl: db.url, boss, logger: log })
  // Streams are long-lived; ordinary requests are short. Keep-alive above common proxy idle timeouts.
  app.server.keepAliveTimeout = 72_000
  app.server.requestTimeout = 120_000
  await app.listen({ host: config.HOST, port: config.PORT })
  await startWebhookDelivery(boss, config, log)
  const worker = config.IN_PROCESS_WORKER
    ? await createWorker({ config, prisma: db.prisma, boss, log })
    : null
  const demo = config.DEMO_RESOURCES ? await ensureDemoResources({ config, repos, log }) : null

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      grace.uninstall()
      await demo?.stop()
      await worker?.stop()
      await app.close()
      await stopBoss(boss, log)
      await db.close()
    })()
    return closing
  }
  const grace = closeWithGrace({ delay: 60_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'server crashed')
    else log.info({ signal }, 'shutting down')
    await close()
  })
  return { app, worker, demo, close }
}
