/**
 * Start-up that explains itself: the Node.js version check, a taken port refused in one line with no
 * PostgreSQL left behind, `.env` read at start, and the banner of a real `sso serve` with the admin key
 * on the first start only.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { MIN_NODE, nodeVersionProblem } from '../../src/cli/node-version.ts'
import { providerReady } from '../helpers/providers.ts'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const BIN = path.join(REPO, 'bin', 'sso.js')
const made: string[] = []
const cudaWorks = (await providerReady('cuda')).ok

after(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sso-start-'))
  made.push(dir)
  // mkdtemp makes it 0700; run as root, the embedded server's `postgres` user must be able to enter it.
  await chmod(dir, 0o755)
  return dir
}

/** Environment for a child service: this Node first on PATH, nothing inherited that points elsewhere. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
  }
  for (const key of ['DATABASE_URL', 'PORT', 'HOST', 'BOOTSTRAP_ADMIN_KEY', 'SSO_URL', 'NODE_TEST_CONTEXT'])
    delete env[key]
  return { ...env, LOG_LEVEL: 'warn', ...extra }
}

interface Finished {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

function finished(child: ChildProcess): Promise<Finished> {
  const started = Date.now()
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => {
    stdout += d
  })
  child.stderr?.on('data', (d) => {
    stderr += d
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }))
  })
}

/** Pids of processes whose command line mentions `text` (a PostgreSQL server started on that folder). */
function processesMentioning(text: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry))
    } catch {
      // the process exited meanwhile
    }
  }
  return pids
}

describe('Node.js version check', () => {
  test('an old Node is refused with the version found, the one needed and how to get it', () => {
    const message = nodeVersionProblem('20.19.2', '/usr/bin/node')
    assert.ok(message)
    assert.match(message, /this is Node\.js 20\.19\.2 \(\/usr\/bin\/node\)/)
    assert.match(message, new RegExp(`needs Node\\.js ${MIN_NODE.replaceAll('.', '\\.')} or newer`))
    assert.match(message, /npm install -g node@24/)
    assert.match(message, /nvm install 24/)
    assert.ok(nodeVersionProblem('v22.11.9', 'node'))
    assert.ok(nodeVersionProblem('18.20.0', 'node'))
  })

  test('22.12 and newer pass', () => {
    for (const v of ['22.12.0', '22.13.1', '23.0.0', '24.1.0', process.versions.node]) {
      assert.equal(nodeVersionProblem(v, 'node'), undefined, v)
    }
  })
})

describe('npm start', { timeout: 240_000 }, () => {
  test('on a taken port exits non-zero within 10 s with one line and starts no PostgreSQL', async () => {
    const dataDir = await tempDir()
    const taken: Server = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
    const { port } = taken.address() as { port: number }
    try {
      const child = spawn('npm', ['start', '--silent'], {
        cwd: REPO,
        env: childEnv({ PORT: String(port), DATA_DIR: dataDir }),
      })
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      const result = await finished(child)
      clearTimeout(killer)
      assert.equal(result.code, 1, result.stderr)
      assert.ok(result.ms < 10_000, `exited after ${result.ms} ms`)
      const lines = result.stderr.trim().split('\n')
      assert.equal(lines.length, 1, result.stderr)
      assert.match(lines[0], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`))
      assert.deepEqual(processesMentioning(dataDir), [])
    } finally {
      taken.close()
    }
  })

  test('a start that fails once PostgreSQL runs exits 1 with one line and stops it', {
    skip: cudaWorks && 'CUDA works here, so WORKER_DEVICES=cuda does not fail',
  }, async () => {
    const dataDir = await tempDir()
    // The worker checks its devices after the database, the queue and the API have started.
    const child = spawn('npm', ['start', '--silent'], {
      cwd: REPO,
      env: childEnv({ PORT: '0', DATA_DIR: dataDir, WORKER_DEVICES: 'cuda' }),
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    const result = await finished(child)
    clearTimeout(killer)
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /^sso serve: cannot start: cuda: [^\n]*\n$/)
    assert.ok(processesMentioning(path.join(dataDir, 'postgres')).length === 0, 'PostgreSQL stopped')
    assert.ok(existsSync(path.join(dataDir, 'postgres', 'data', 'PG_VERSION')), 'PostgreSQL had started')
  })

  test('prints a banner with the admin key on the first start only; SIGTERM stops its PostgreSQL', async () => {
    const dataDir = await tempDir()
    const env = childEnv({
      PORT: '0',
      DATA_DIR: dataDir,
      MODELS_ROOT: path.join(dataDir, 'models'),
      IN_PROCESS_WORKER: 'false',
    })
    const start = async () => {
      const child = spawn('npm', ['start', '--silent'], { cwd: REPO, env })
      const done = finished(child)
      let stderr = ''
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d) => {
          stderr += d
          if (/sso-trainer is running/.test(stderr) && /\n\n$/.test(stderr)) resolve()
        })
        child.on('exit', () => reject(new Error(`sso serve exited before its banner: ${stderr}`)))
      })
      return { child, done, banner: stderr }
    }

    const first = await start()
    const key = first.banner.match(/ADMIN API KEY[^\n]*\n\n\s+(sso_\S+)/)?.[1]
    assert.ok(key, first.banner)
    const url = first.banner.match(/is running: (http:\/\/\S+)/)?.[1]
    assert.match(first.banner, new RegExp(`data: +${dataDir}`))
    assert.match(first.banner, /embedded PostgreSQL/)
    assert.match(first.banner, /npm run admin-key/)
    const keys = await fetch(`${url}/v1/api-keys`, { headers: { authorization: `Bearer ${key}` } })
    assert.equal(keys.status, 200)
    assert.ok(processesMentioning(dataDir).length > 0, 'the embedded PostgreSQL runs')
    first.child.kill('SIGTERM')
    assert.equal((await first.done).code, 0)
    assert.deepEqual(processesMentioning(dataDir), [])

    const second = await start()
    assert.doesNotMatch(second.banner, /ADMIN API KEY/)
    second.child.kill('SIGTERM')
    await second.done
    assert.deepEqual(processesMentioning(dataDir), [])
  })
})

describe('.env', { timeout: 60_000 }, () => {
  test('is read from the working directory at start; the environment wins over it', async () => {
    const dir = await tempDir()
    await writeFile(path.join(dir, '.env'), 'SSO_URL=http://127.0.0.1:9\n')
    const run = (env: Record<string, string>) =>
      finished(spawn(process.execPath, [BIN, 'runs', 'list'], { cwd: dir, env: childEnv(env) }))
    const fromFile = await run({})
    assert.equal(fromFile.code, 1)
    assert.match(fromFile.stderr, /cannot reach the service at http:\/\/127\.0\.0\.1:9 /)
    const fromEnv = await run({ SSO_URL: 'http://127.0.0.1:7' })
    assert.match(fromEnv.stderr, /cannot reach the service at http:\/\/127\.0\.0\.1:7 /)
  })
})
