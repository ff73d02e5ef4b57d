/**
 * `npm run demo`: a newcomer's first minutes. Starts the service unless one answers at SSO_URL,
 * waits for the ready demo it registers (model `demo`, dataset `demo-queries`, principle set `demo`),
 * creates an `sso` run from the model's recommended hyperparameters, prints the dashboard URL, and
 * shows the run's progress bar here until it ends. A service started here keeps running (for the
 * dashboard) until Ctrl-C. A service without the demo (DEMO_RESOURCES=false) gets the run on its
 * built-in tiny model.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEMO_NAMES } from '../src/api/demo-resources.ts'
import { ApiClient, ApiError } from '../src/cli/api-client.ts'
import { createDemoResources, createDemoRun, type DemoResources, demoRunBody } from '../src/cli/demo-setup.ts'
import { readCliEnvironment } from '../src/cli/environment.ts'
import { type Collection, listAll } from '../src/cli/resource-ids.ts'
import type { RunLike } from '../src/cli/run-summary.ts'
import { watchRun } from '../src/cli/watch-run.ts'
import { loadConfig } from '../src/config.ts'
import type { ModelDto } from '../src/schemas/models.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const env = readCliEnvironment()
const config = loadConfig()

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

/** The key this demo bootstraps on a fresh database, kept beside the data so later demos reuse it. */
async function demoKey(keyFile: string): Promise<string> {
  try {
    return (await readFile(keyFile, 'utf8')).trim()
  } catch {
    const key = `sso_demo_${randomBytes(24).toString('base64url')}`
    await mkdir(path.dirname(keyFile), { recursive: true })
    await writeFile(keyFile, `${key}\n`, { mode: 0o600 })
    return key
  }
}

async function startService(url: string, apiKey: string): Promise<ChildProcess> {
  const logFile = path.join(config.dataDir, 'demo-service.log')
  await mkdir(config.dataDir, { recursive: true })
  const log = await open(logFile, 'a')
  const port = new URL(url).port || '3000'
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: port,
      BOOTSTRAP_ADMIN_KEY: apiKey,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', log.fd, log.fd],
  })
  await log.close() // the child holds its own copy of the descriptor
  const shown = path.relative(process.cwd(), logFile)
  process.stdout.write(`starting the service on ${url} (log: ${shown.startsWith('..') ? logFile : shown}) `)
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}; see ${logFile}`)
    if (await healthy(url)) {
      process.stdout.write('ready\n')
      return child
    }
    process.stdout.write('.')
    await new Promise((r) => setTimeout(r, 500))
  }
  child.kill('SIGTERM')
  throw new Error(`the service did not answer on ${url}/healthz within 2 minutes; see ${logFile}`)
}

/**
 * The ready demo the service registers at start (DEMO_RESOURCES): its model appears once made, so
 * this waits for it. Undefined when the service has no demo (then the run uses the tiny model).
 */
async function readyDemo(client: ApiClient): Promise<DemoResources | undefined> {
  const find = async (collection: Collection, name: string) =>
    (await listAll(client, collection)).find((item) => item.name === name)?.id
  const datasetId = await find('datasets', DEMO_NAMES.dataset)
  const principleSetId = await find('principle-sets', DEMO_NAMES.principleSet)
  if (!datasetId || !principleSetId) return undefined
  for (let waited = 0; waited < 300; waited++) {
    const modelId = await find('models', DEMO_NAMES.model)
    if (modelId) return { modelId, datasetId, principleSetId }
    process.stdout.write(waited === 0 ? "waiting for the service to make the demo model 'demo' " : '.')
    await new Promise((r) => setTimeout(r, 1000))
  }
  process.stdout.write('\nthe demo model did not appear; see the service log\n')
  return undefined
}

let service: ChildProcess | undefined
try {
  let apiKey = env.apiKey
  if (!(await healthy(env.url))) {
    apiKey ??= await demoKey(path.join(config.dataDir, 'demo-api-key'))
    service = await startService(env.url, apiKey)
  }
  if (!apiKey) throw new Error('a service is running but SSO_API_KEY is not set: export the key it printed')
  const client = new ApiClient(env.url, apiKey)
  const demo = await readyDemo(client)
  const run = demo
    ? await client.post<RunLike>('/v1/runs', {
        ...demoRunBody(demo),
        hyperparameters: (await client.get<ModelDto>(`/v1/models/${demo.modelId}`))
          .recommended_hyperparameters,
      })
    : await createDemoRun(client, await createDemoResources(client))
  process.stdout.write(
    `\nDashboard: ${env.url}/#/runs/${run.id}\nAPI key (paste it at the top right): ${apiKey}\n\n`,
  )
  const final = await watchRun(client, run.id, { json: false, interactive: env.color, out: process.stdout })
  if (service) {
    process.stdout.write(
      `\nrun ${final.status}. The service keeps running for the dashboard; Ctrl-C stops it.\n`,
    )
    const child = service
    process.on('SIGINT', () => child.kill('SIGTERM'))
    await new Promise((r) => child.once('exit', r))
  }
} catch (e) {
  if (e instanceof ApiError && e.status === 401) {
    process.stderr.write(
      'demo: the service refused the key. This database already has keys: set SSO_API_KEY to an admin key.\n',
    )
  } else {
    process.stderr.write(`demo: ${(e as Error).message}\n`)
  }
  service?.kill('SIGTERM')
  process.exitCode = 1
}
