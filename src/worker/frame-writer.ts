import type { PrismaClient } from '../db/client.ts'
import type { MetricRow } from '../db/metrics-repository.ts'
import { createRepositories } from '../db/repositories.ts'
import { appendRunFrames, type NewFrame } from '../db/run-frames.ts'
import type { Logger } from '../log.ts'

/** Frames are flushed this often: few transactions per second, latency well below what eyes notice. */
export const FLUSH_INTERVAL_MS = 10

/**
 * Buffers a run's metrics and stream frames and writes them in batches, one transaction per flush
 * (metrics with skipDuplicates, frames with consecutive seqs, NOTIFY at commit). The trainer's
 * callbacks only push; they never wait on Postgres.
 */
export class FrameWriter {
  private metrics: MetricRow[] = []
  private frames: NewFrame[] = []
  private timer: NodeJS.Timeout | undefined
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
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      void this.flush().catch(() => {})
    }, FLUSH_INTERVAL_MS)
  }

  /** Writes everything pushed so far; resolves when it is committed. */
  flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.flushing = this.flushing.then(() => this.write())
    return this.flushing
  }

  private async write(): Promise<void> {
    if (this.frames.length === 0 && this.metrics.length === 0) return
    const frames = this.frames
    const metrics = this.metrics
    this.frames = []
    this.metrics = []
    try {
      await this.prisma.$transaction(async (tx) => {
        // Frames first: they lock the run row before the metric rows take their foreign-key share
        // lock on it, which a concurrent status change (update, then lock) would otherwise deadlock on.
        await appendRunFrames(tx, this.runId, frames)
        await createRepositories(tx).metrics.createMany(metrics)
      })
    } catch (e) {
      this.failure = e as Error
      this.log.error({ err: e, runId: this.runId }, 'writing metrics and frames failed')
      throw e
    }
  }
}
