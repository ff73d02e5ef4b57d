import type { FastifyBaseLogger as Logger } from 'fastify'
import { AppError } from '../../errors.ts'

/** With the 1 s key cache of api-key-auth, a revoked key's streams close within about 1.5 s. */
const CHECK_EVERY_MS = 500

/**
 * Open streams by the key that opened them. While any is open their keys are verified again every
 * CHECK_EVERY_MS, and the streams of a key that no longer verifies (revoked by this process or
 * another) are closed. A database error keeps the streams: only a refused key ends them.
 */
export class StreamKeyWatch {
  private readonly streams = new Map<string, Set<() => void>>()
  private timer: NodeJS.Timeout | undefined
  private checking: Promise<void> | undefined

  constructor(
    private readonly verify: (key: string) => Promise<unknown>,
    private readonly log: Logger,
    private readonly everyMs = CHECK_EVERY_MS,
  ) {}

  /** Registers a stream opened with `key`; call the returned function when the stream ends. */
  watch(key: string, close: () => void): () => void {
    const set = this.streams.get(key) ?? new Set()
    this.streams.set(key, set)
    set.add(close)
    if (!this.timer) {
      this.timer = setInterval(() => void this.check(), this.everyMs)
      this.timer.unref()
    }
    return () => {
      set.delete(close)
      if (set.size === 0 && this.streams.get(key) === set) this.streams.delete(key)
      if (this.streams.size === 0) this.stop()
    }
  }

  /** Verifies every watched key now (a revocation by this process calls it at once). */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => {
      this.checking = undefined
    })
    return this.checking
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private async checkAll(): Promise<void> {
    await Promise.all(
      [...this.streams].map(async ([key, closes]) => {
        try {
          await this.verify(key)
        } catch (e) {
          if (!(e instanceof AppError && e.code === 'unauthorized')) {
            this.log.warn({ err: e }, 'could not verify the key of open streams')
            return
          }
          for (const close of [...closes]) close()
        }
      }),
    )
  }
}
