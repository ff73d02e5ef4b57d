/**
 * What `sso serve` and `sso worker` do around starting: refuse a taken port before anything starts,
 * and turn any start failure into one line and exit code 1 with no embedded PostgreSQL left running.
 */
import { createServer } from 'node:net'
import { stopEmbeddedServers } from '../db/embedded-postgres.ts'
import { AppError } from '../errors.ts'

/** Node's listen errors carry the address and port they were about. */
type ListenError = NodeJS.ErrnoException & { address?: string; port?: number }

function listenProblem(e: ListenError): string | undefined {
  const { address: host, port } = e
  if (e.code === 'EADDRINUSE') {
    return `port ${port} on ${host} is already in use (another sso serve?); stop that process or choose another port with --port or PORT`
  }
  if (e.code === 'EACCES')
    return `no permission to listen on ${host}:${port}; choose a port above 1023 with --port or PORT`
  if (e.code === 'EADDRNOTAVAIL')
    return `${host} is not an address of this machine; set HOST (default 127.0.0.1)`
  return undefined
}

/** Refuses an address the API could not listen on, before the database and queue start. */
export function assertCanListen(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (e: ListenError) =>
      reject(new AppError('conflict', listenProblem(e) ?? `cannot listen on ${host}:${port}: ${e.message}`)),
    )
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()))
  })
}

/**
 * Runs a service's start. On failure the half-started service (queue, pool) still holds the event
 * loop, so this stops the embedded server, prints one line and exits.
 */
export async function startOrExit<T>(command: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start()
  } catch (e) {
    const reason = listenProblem(e as ListenError) ?? (e as Error).message ?? String(e)
    await stopEmbeddedServers().catch(() => {})
    process.stderr.write(`sso ${command}: cannot start: ${reason.replace(/\s*\n\s*/g, ' ')}\n`)
    process.exit(1)
  }
}
