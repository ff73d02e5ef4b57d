/**
 * A cluster of its own made with the machine's PostgreSQL binaries (/usr/lib/postgresql/N/bin): an
 * external server process the service neither starts nor owns, which a test stops and starts again.
 * The machine's own server (which other test files use) is never touched: the cluster lives in a
 * temporary folder the test creates, on a free port, and is removed afterwards. As root, initdb and
 * pg_ctl run as the `postgres` user, who is given that folder (and nothing else).
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../../src/db/embedded-postgres.ts'
import { type ServerUser, serverUser } from '../../src/db/postgres-server-user.ts'
import type { RestartablePostgres } from './restartable-postgres.ts'

const LIB = '/usr/lib/postgresql'

/** The newest machine PostgreSQL's bin folder, or undefined when none is installed. */
export function machinePostgresBin(): string | undefined {
  if (!existsSync(LIB)) return undefined
  const versions = readdirSync(LIB)
    .filter((v) => existsSync(path.join(LIB, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? path.join(LIB, versions[0], 'bin') : undefined
}

export async function startMachinePostgres(bin: string): Promise<RestartablePostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sso-chaos-pg-'))
  const user: ServerUser | undefined = await serverUser()
  if (user) await chown(dir, user.uid, user.gid)
  const data = path.join(dir, 'data')
  const port = await freePort()
  const run = (tool: string, args: string[]) =>
    promisify(execFile)(path.join(bin, tool), args, { uid: user?.uid, gid: user?.gid, cwd: dir })
  await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const start = async () => {
    await run('pg_ctl', ['start', '-w', '-D', data, '-l', path.join(dir, 'server.log'), '-o', options])
  }
  const stop = async () => {
    await run('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', data])
  }
  await start()
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    remove: async () => {
      await stop().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
