/** A real worker process (`sso worker`) over a test app's database and data folder, for kill -9 tests. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { TestApp } from '../helpers/build-app.ts'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

export interface WorkerProcess {
  child: ChildProcess
  /** What it printed, for the message of a failing assertion. */
  output(): string
  /** Sends `signal` (SIGKILL by default), then waits for the process to be gone. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Its trainer processes now (the attempt it is training); other children, such as esbuild's service, are not counted. */
  trainerPids(): number[]
}

export function spawnWorker(app: TestApp): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: app.databaseUrl,
      DATA_DIR: app.dataDir,
      MODELS_ROOT: app.modelsRoot,
      EXECUTION_PROVIDER: 'cpu',
      WORKER_DEVICES: 'cpu',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => {
    output += d
  })
  child.stderr?.on('data', (d) => {
    output += d
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  app.onClose(() => kill())
  // tsx starts esbuild's service as another child of the worker when its transform cache is cold
  const isTrainer = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('trainer-process-main')
    } catch {
      return false // gone meanwhile
    }
  }
  const trainerPids = () => {
    try {
      return execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter(isTrainer)
    } catch {
      return [] // pgrep exits 1 when there is none
    }
  }
  return { child, output: () => output, kill, trainerPids }
}
