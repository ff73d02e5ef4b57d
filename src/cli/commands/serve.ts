/** `sso serve` and `sso worker`: the two long-running processes, configured from the environment. */
import { generateApiKey, hashApiKey } from '../../api/plugins/app/api-key-auth.ts'
import { loadConfig } from '../../config.ts'
import type { Command } from '../command.ts'
import { integerOption, positionalArgs, stringOption } from '../command.ts'
import { formatStartBanner } from '../start-banner.ts'
import { assertCanListen, startOrExit } from '../start-up.ts'

export const serve: Command = {
  path: ['serve'],
  summary: 'start the API and dashboard (with one in-process worker unless --no-worker)',
  options: {
    port: { type: 'string', arg: 'port', description: 'listen port (env PORT, default 3000)' },
    host: { type: 'string', arg: 'host', description: 'listen address (env HOST, default 127.0.0.1)' },
    'no-worker': { type: 'boolean', description: 'do not train in this process (IN_PROCESS_WORKER=false)' },
  },
  details: `Configuration comes from the environment and from .env in the working directory (see
.env.example): DATABASE_URL (unset: an embedded PostgreSQL in DATA_DIR), LOG_LEVEL, MODELS_ROOT, ...
The first start prints an admin API key; 'sso admin-key' mints another one.`,
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const port = integerOption(ctx, 'port', this)
    const host = stringOption(ctx, 'host', this, false)
    const config = loadConfig({
      ...process.env,
      ...(port !== undefined ? { PORT: String(port) } : {}),
      ...(host ? { HOST: host } : {}),
      ...(ctx.values['no-worker'] ? { IN_PROCESS_WORKER: 'false' } : {}),
    })
    if (config.PORT !== 0) await assertCanListen(config.HOST, config.PORT)
    // The key a first start creates is chosen here, so that it can be shown in the banner below
    // rather than only inside a log line.
    const adminKey = config.BOOTSTRAP_ADMIN_KEY ? undefined : generateApiKey()
    const { startServer } = await import('../../api/server.ts')
    const server = await startOrExit('serve', () =>
      startServer(adminKey ? { ...config, BOOTSTRAP_ADMIN_KEY: adminKey } : config),
    )
    const { repos } = server.app
    const created =
      adminKey !== undefined && (await repos.apiKeys.findActiveByHash(hashApiKey(adminKey))) !== null
    const address = server.app.server.address()
    const listening = typeof address === 'object' && address ? address.port : config.PORT
    const worker = server.worker && (await repos.workers.list(false)).find((w) => w.id === server.worker?.id)
    process.stderr.write(
      formatStartBanner({
        url: `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${listening}`,
        config,
        workerDevices: server.worker ? (worker?.devices ?? []) : undefined,
        adminKey: created ? adminKey : undefined,
        demo: server.demo ? (server.demo.making ? 'making' : 'ready') : undefined,
      }),
    )
    return undefined
  },
}

export const worker: Command = {
  path: ['worker'],
  summary: 'start a standalone worker that trains queued runs (scale out against one Postgres)',
  options: {
    concurrency: { type: 'string', arg: 'n', description: 'runs trained at once (env WORKER_CONCURRENCY)' },
  },
  details: 'Point DATABASE_URL at the same Postgres as the API; start as many workers as you have devices.',
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const concurrency = integerOption(ctx, 'concurrency', this)
    const config = loadConfig({
      ...process.env,
      ...(concurrency !== undefined ? { WORKER_CONCURRENCY: String(concurrency) } : {}),
    })
    const { startWorker } = await import('../../worker/main.ts')
    await startOrExit('worker', () => startWorker(config))
    return undefined
  },
}
