import type { PrismaClient } from '../db/client.ts'
import type { MetricRow } from '../db/metrics-repository.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFrames, type NewFrame } from '../db/run-frames.ts'
import type { Logger } from '../log.ts'

/** Flushes start at most this often: a bounded number of transactions per second under bursts. */
export const FLUSH_INTERVAL_MS = 10

/**
 * Waits before each new try of a write that failed while the database answered (an error of the
 * write itself): after the last one the write fails. A database that does not answer is waited for
 * without a limit, every OUTAGE_RETRY_MS at most.
 */
const RETRY_DELAYS_MS = [100, 500, 2000, 5000]
const OUTAGE_RETRY_MS = 1000

/**
 * Buffers a run's metrics and stream frames and writes them in batches, one transaction per flush
 * (metrics with skipDuplicates, frames with consecutive seqs, NOTIFY at commit). A batch is never
 * dropped: while the database cannot be reached it is kept (with everything pushed since) and tried
 * again until it is written, and `outageMs` tells the run how long that has lasted, so the trainer can
 * wait and the run give up its slot when the outage lasts too long. The trainer's callbacks only push.
 */
export class FrameWriter {
  private metrics: MetricRow[] = []
  private frames: NewFrame[] = []
  private timer: NodeJS.Timeout | undefined
  private lastFlushAt = Number.NEGATIVE_INFINITY
  private flushing: Promise<void> = Promise.resolve()
  private failure: Error | undefined
  private unreachableSince: number | undefined

  constructor(
    private readonly prisma: PrismaClient,
    private readonly runId: string,
    private readonly log: Logger,
    /** Called after the first write that succeeds following an outage, with how long it lasted. */
    private readonly onReconnected: (outageMs: number) => void = () => {},
  ) {}

  /** How long writes have been failing for want of a database; 0 while they succeed. */
  outageMs(): number {
    return this.unreachableSince === undefined ? 0 : performance.now() - this.unreachableSince
  }

  push(frame: NewFrame, metrics: MetricRow[] = []): void {
    if (this.failure) throw this.failure
    this.frames.push(frame)
    this.metrics.push(...metrics)
    if (this.timer) return
    // A frame after a quiet spell leaves at once, with what is pushed in the same tick; within
    // FLUSH_INTERVAL_MS of the previous flush, frames wait for the next one and go together.
    const wait = Math.max(0, this.lastFlushAt + FLUSH_INTERVAL_MS - performance.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flush().catch(() => {})
    }, wait)
  }

  /** Writes everything pushed so far; resolves when it is committed (after an outage, if one comes). */
  flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.lastFlushAt = performance.now()
    this.flushing = this.flushing.then(() =>
      this.durably('writing metrics and frames', async () => {
        // Everything pushed so far, also what came while an earlier try of this batch failed.
        const frames = this.frames.length
        const metrics = this.metrics.length
        if (frames === 0 && metrics === 0) return
        await this.prisma.$transaction(async (tx) => {
          // Frames first: they lock the run row before the metric rows take their foreign-key share
          // lock on it, which a concurrent status change (update, then lock) would otherwise deadlock on.
          await appendRunFrames(tx, this.runId, this.frames.slice(0, frames))
          await createRepositories(tx).metrics.createMany(this.metrics.slice(0, metrics))
        })
        // Only once committed: a batch that rolled back stays at the head of the buffer.
        this.frames = this.frames.slice(frames)
        this.metrics = this.metrics.slice(metrics)
      }),
    )
    return this.flushing
  }

  /**
   * Runs an idempotent write of the run (a checkpoint row, samples, its outcome) with the writer's
   * patience: through an outage of any length, and a few times when the database answers with an error.
   */
  async durably<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; ) {
      try {
        const result = await write()
        this.reconnected()
        return result
      } catch (e) {
        if (!(await this.reachable())) {
          if (this.unreachableSince === undefined) {
            this.unreachableSince = performance.now()
            this.log.warn({ err: e, runId: this.runId }, `${what}: database unreachable; waiting for it`)
          }
          await new Promise((r) => setTimeout(r, OUTAGE_RETRY_MS))
          continue
        }
        this.reconnected()
        if (failures < RETRY_DELAYS_MS.length) {
          this.log.warn({ err: e, runId: this.runId, attempt: failures + 1 }, `${what} failed; retrying`)
          await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[failures++]))
          continue
        }
        this.failure = e as Error
        this.log.error({ err: e, runId: this.runId }, `${what} failed`)
        throw e
      }
    }
  }

  private async reachable(): Promise<boolean> {
    return this.prisma.$queryRaw`SELECT 1`.then(
      () => true,
      () => false,
    )
  }

  private reconnected(): void {
    if (this.unreachableSince === undefined) return
    const outageMs = this.outageMs()
    this.unreachableSince = undefined
    this.log.info({ runId: this.runId, outageMs: Math.round(outageMs) }, 'database reachable again')
    this.onReconnected(outageMs)
  }
}
