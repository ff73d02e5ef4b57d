import { isMainThread, parentPort, type TransferListItem, Worker, workerData } from 'node:worker_threads'
import { AppError, ERROR_CODES, type ErrorCode, InvalidStateError } from '../../errors.ts'

/**
 * Runs engine work (session.run blocks its thread for the whole step) on a worker_thread so the
 * HTTP event loop stays responsive. The thread module calls `serveThread(handlers)`; the main side
 * holds a ThreadRunner and `call`s handlers by name. Errors travel back as AppErrors with their
 * code; a thread that dies rejects what was pending instead of taking the process down.
 */

export interface ThreadContext {
  /** Data the runner was started with. */
  readonly workerData: unknown
  /** Sends an event to the main side's onEvent (progress, metrics). */
  emit(event: unknown): void
}

// biome-ignore lint/suspicious/noExplicitAny: handler payloads are typed by each thread module
export type ThreadHandlers = Record<string, (payload: any, ctx: ThreadContext) => unknown>

export interface SerializedError {
  name: string
  code: ErrorCode
  message: string
  details?: unknown
}

type ToMain =
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: SerializedError }
  | { kind: 'event'; event: unknown }

interface ToThread {
  id: number
  method: string
  payload: unknown
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError) {
    return { name: err.name, code: err.code, message: err.message, details: structuredSafe(err.details) }
  }
  const e = err as Error
  return { name: e?.name ?? 'Error', code: 'internal', message: String(e?.message ?? err) }
}

function structuredSafe(value: unknown): unknown {
  try {
    return structuredClone(value)
  } catch {
    return undefined
  }
}

export function reviveError(e: SerializedError): AppError {
  const code = (ERROR_CODES as readonly string[]).includes(e.code) ? e.code : 'internal'
  const err = new AppError(code, e.message, e.details)
  err.name = e.name
  return err
}

/** Thread side: answers calls from the ThreadRunner that started this module. */
export function serveThread(handlers: ThreadHandlers): void {
  if (isMainThread || parentPort === null)
    throw new InvalidStateError('serveThread must run inside a worker_thread')
  const port = parentPort
  const ctx: ThreadContext = {
    workerData,
    emit: (event) => port.postMessage({ kind: 'event', event } satisfies ToMain),
  }
  port.on('message', async (msg: ToThread) => {
    let reply: ToMain
    try {
      const handler = Object.hasOwn(handlers, msg.method) ? handlers[msg.method] : undefined
      if (handler === undefined)
        throw new AppError('not_found', `engine thread has no handler '${msg.method}'`)
      reply = { kind: 'result', id: msg.id, value: await handler(msg.payload, ctx) }
    } catch (err) {
      reply = { kind: 'error', id: msg.id, error: serializeError(err) }
    }
    try {
      port.postMessage(reply)
    } catch (err) {
      port.postMessage({ kind: 'error', id: msg.id, error: serializeError(err) } satisfies ToMain)
    }
  })
}

export interface ThreadRunnerOptions {
  workerData?: unknown
  onEvent?: (event: unknown) => void
  /** Names the thread in messages and in diagnostics. */
  name?: string
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void }

/** Main side of an engine thread; H is the handler table type of the thread module. */
export class ThreadRunner<H extends ThreadHandlers> {
  private readonly worker: Worker
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private failure: AppError | undefined
  readonly name: string

  constructor(moduleUrl: URL, options: ThreadRunnerOptions = {}) {
    this.name = options.name ?? 'engine'
    this.worker = new Worker(moduleUrl, { workerData: options.workerData, name: this.name })
    this.worker.on('message', (msg: ToMain) => {
      if (msg.kind === 'event') {
        options.onEvent?.(msg.event)
        return
      }
      const p = this.pending.get(msg.id)
      if (p === undefined) return
      this.pending.delete(msg.id)
      if (msg.kind === 'result') p.resolve(msg.value)
      else p.reject(reviveError(msg.error))
    })
    this.worker.on('error', (err) => {
      this.fail(
        new AppError('training_failed', `${this.name} thread failed: ${err.message}`, undefined, {
          cause: err,
        }),
      )
    })
    this.worker.on('exit', (code) => {
      this.fail(new AppError('training_failed', `${this.name} thread exited with code ${code}`))
    })
  }

  /** Calls a handler on the thread. Transferred buffers move instead of being copied. */
  call<K extends keyof H & string>(
    method: K,
    payload: Parameters<H[K]>[0],
    transfer: readonly TransferListItem[] = [],
  ): Promise<Awaited<ReturnType<H[K]>>> {
    if (this.failure) return Promise.reject(this.failure)
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      try {
        this.worker.postMessage({ id, method, payload } satisfies ToThread, transfer)
      } catch (err) {
        this.pending.delete(id)
        reject(
          new AppError(
            'validation_failed',
            `cannot send '${method}' to the ${this.name} thread: ${String(err)}`,
          ),
        )
      }
    })
  }

  /** Stops the thread; pending calls are rejected. */
  async close(): Promise<void> {
    if (this.failure === undefined) this.failure = new InvalidStateError(`${this.name} thread was closed`)
    await this.worker.terminate()
  }

  private fail(err: AppError): void {
    this.failure ??= err
    for (const p of this.pending.values()) p.reject(this.failure)
    this.pending.clear()
  }
}
