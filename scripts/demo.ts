/**
 * `npm run demo`: a newcomer's first minute. Starts the service unless one answers at SSO_URL,
 * makes the demo model once (the tiny model after a short SFT, under MODELS_ROOT) and registers it,
 * creates an `sso` run on it (with the checkable-task principles and queries), prints the dashboard
 * URL, and shows the run's progress bar here until it ends. A service started here keeps running
 * (for the dashboard) until Ctrl-C. A service elsewhere that cannot see MODELS_ROOT gets the run on
 * its built-in tiny model.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ApiClient, ApiError } from '../src/cli/api-client.ts'
import { DEMO_MODEL_NAME, ensureDemoModel } from '../src/cli/demo-model.ts'
import { createDemoResources, createDemoRun } from '../src/cli/demo-setup.ts'
import { readCliEnvironment } from '../src/cli/environment.ts'
import { watchRun } from '../src/cli/watch-run.ts'
import { loadConfig } from '../src/config.ts'

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

/** Trains the demo model when missing and registers it; undefined (the tiny model) when that fails. */
async function demoModel(client: ApiClient): Promise<string | undefined> {
  try {
    const dir = await ensureDemoModel(config.modelsRoot, (step, loss) => {
      process.stdout.write(
        `\rmaking the demo model (a short SFT of the tiny model): step ${step}, loss ${loss.toFixed(3)} `,
      )
    })
    process.stdout.write('\n')
    await client.post('/v1/models', { name: DEMO_MODEL_NAME, path: path.relative(config.modelsRoot, dir) })
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return DEMO_MODEL_NAME // registered by an earlier demo
    process.stdout.write(`\nno demo model (${(e as Error).message}); the run uses the built-in tiny model\n`)
    return undefined
  }
  return DEMO_MODEL_NAME
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
  const resources = await createDemoResources(client, 1, await demoModel(client))
  const run = await createDemoRun(client, resources)
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
