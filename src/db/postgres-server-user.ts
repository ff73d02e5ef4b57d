/**
 * PostgreSQL refuses to run as root, so a root process runs the embedded server as the system user
 * `postgres`, which must reach the server's binaries and its data folder. Nothing outside the folder
 * the service was given is ever changed: binaries that user cannot reach are hard-linked (or copied)
 * into that folder, and a folder it cannot reach stops the start with one line saying what to do.
 */
import { execFile, spawn } from 'node:child_process'
import {
  chmod,
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { AppError } from '../errors.ts'

export interface ServerUser {
  uid: number
  gid: number
}

const SERVER_USER = 'postgres'
const ALTERNATIVES =
  'set DATABASE_URL to a PostgreSQL server you run, or start the service as a non-root user'

/** The user the server runs as: undefined when this process is not root (the server runs as us). */
export async function serverUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, SERVER_USER])).stdout)
  try {
    return { uid: await id('-u'), gid: await id('-g') }
  } catch {
    throw new AppError(
      'internal',
      `the embedded PostgreSQL cannot run as root and there is no '${SERVER_USER}' user to run it as: ` +
        `create one (useradd --system --user-group ${SERVER_USER}), or ${ALTERNATIVES}`,
    )
  }
}

/** Whether `user` can enter (folder) or execute (file) `target`, every folder above it included. */
export function canReach(user: ServerUser, target: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', 'test -x "$1"', 'sh', target], {
      uid: user.uid,
      gid: user.gid,
      cwd: '/',
      stdio: 'ignore',
    })
    child.on('error', () => resolve(false))
    child.on('exit', (code) => resolve(code === 0))
  })
}

/** Refuses, in one line, a folder the server's user cannot enter, naming the folder that blocks it. */
export async function assertReachable(user: ServerUser, dir: string): Promise<void> {
  if (await canReach(user, dir)) return
  let blocked = path.resolve(dir)
  for (let up = path.dirname(blocked); up !== blocked && !(await canReach(user, up)); up = path.dirname(up)) {
    blocked = up
  }
  throw new AppError(
    'internal',
    `the embedded PostgreSQL runs as user '${SERVER_USER}' (PostgreSQL refuses root), which cannot enter ` +
      `${blocked}: set DATA_DIR to a folder that user can reach (e.g. DATA_DIR=/var/lib/sso-trainer), or ${ALTERNATIVES}`,
    { dir, blocked },
  )
}

/**
 * The server's binary folder (`bin`, `lib`, `share`) as `user` can use it: `native` itself when that
 * user can execute its `bin/postgres`, otherwise a linked copy under `ownDir` (made once per version).
 */
export async function reachableBinaries(user: ServerUser, native: string, ownDir: string): Promise<string> {
  if (await canReach(user, path.join(native, 'bin', 'postgres'))) return native
  const target = path.join(ownDir, 'server')
  const stamp = path.join(target, '.source')
  const source = `${native}\n${await readFile(path.join(native, '..', 'package.json'), 'utf8')}`
  if ((await readFile(stamp, 'utf8').catch(() => '')) !== source) {
    await rm(target, { recursive: true, force: true })
    await linkTree(native, target)
    await writeFile(stamp, source)
  }
  return target
}

/** Mirrors a folder: hard links where the filesystem allows them (no extra space), copies elsewhere. */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to)
  await chmod(to, 0o755) // the process umask may be stricter, and the server's user must enter it
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const a = path.join(from, entry.name)
    const b = path.join(to, entry.name)
    if (entry.isDirectory()) await linkTree(a, b)
    else if (entry.isSymbolicLink()) await symlink(await readlink(a), b)
    else await link(a, b).catch(() => copyFile(a, b))
  }
}
