import type { PrismaClient } from '../db/client.ts'
import type { MetricRow } from '../db/metrics-repository.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFrames, type NewFrame } from '../db/run-frames.ts'
import type { Logger } from '../log.ts'

/** Flushes start at most this often: a bounded number of transactions per second under bursts. */
export const FLUSH_INTERVAL_MS = 10

/** Waits before each new try of a batch whose transaction failed; then the run fails. */
const RETRY_DELAYS_MS = [100, 500, 2000, 5000]

/**
 * Buffers a run's metrics and stream frames and writes them in batches, one transaction per flush
 * (metrics with skipDuplicates, frames with consecutive seqs, NOTIFY at commit), retried a few times
 * when the transaction fails. The trainer's callbacks only push; they never wait on Postgres.
 */
export class FrameWriter {
  private metrics: MetricRow[] = []
  private frames: NewFrame[] = []
  private timer: NodeJS.Timeout | undefined
  private lastFlushAt = Number.NEGATIVE_INFINITY
  private flushing: Promise<void> = Promise.resolve()
  private failure: Error | undefined

  constructor(
    private readonly prisma: PrismaClient,
    private readonly runId: string,
    private readonly log: Logger,
  ) {}

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

  /** Writes everything pushed so far; resolves when it is committed. */
  flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.lastFlushAt = performance.now()
    this.flushing = this.flushing.then(() => this.write())
    return this.flushing
  }

  private async write(): Promise<void> {
    if (this.frames.length === 0 && this.metrics.length === 0) return
    const frames = this.frames
    const metrics = this.metrics
    this.frames = []
    this.metrics = []
    for (let attempt = 0; ; attempt++) {
      try {
        await this.prisma.$transaction(async (tx) => {
          // Frames first: they lock the run row before the metric rows take their foreign-key share
          // lock on it, which a concurrent status change (update, then lock) would otherwise deadlock on.
          await appendRunFrames(tx, this.runId, frames)
          await createRepositories(tx).metrics.createMany(metrics)
        })
        return
      } catch (e) {
        if (attempt < RETRY_DELAYS_MS.length) {
          // A dropped connection or a restarting server: the batch rolled back, so it is written again.
          this.log.warn(
            { err: e, runId: this.runId, attempt: attempt + 1 },
            'writing metrics and frames failed; retrying',
          )
          await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]))
          continue
        }
        this.failure = e as Error
        this.log.error({ err: e, runId: this.runId }, 'writing metrics and frames failed')
        throw e
      }
    }
  }
}
