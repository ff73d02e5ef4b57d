import type { FastifyBaseLogger as Logger } from 'fastify'
import type { EventsRepository } from '../../db/events-repository.ts'
import type { ControlMessage } from '../../schemas/stream.ts'
import {
  eventToFrame,
  type FrameListener,
  type LiveFrame,
  type RunFramesHub,
  toLiveFrame,
} from './run-frames-hub.ts'

/** Where a subscription writes: a WebSocket or an SSE response. */
export interface FrameSink {
  /** A control message (no seq). */
  send(text: string): void
  /** A frame; its bytes are shared by every subscriber. */
  sendFrame(live: LiveFrame): void
  /** Bytes accepted but not yet handed to the kernel: the slow-client signal. */
  bufferedBytes(): number
  close(reason: string): void
}

export interface StreamLimits {
  /** Above this many buffered bytes a client is lagging: live frames are dropped for it. */
  highWaterBytes: number
  /** Once its buffer drains below this, a lagging client gets a resync frame and the missed frames. */
  lowWaterBytes: number
  heartbeatMs: number
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  highWaterBytes: 1 << 20,
  lowWaterBytes: 64 << 10,
  heartbeatMs: 15_000,
}

export interface StreamStats {
  droppedFrames: number
  resyncs: number
}

const PAGE = 500
const MAX_PENDING = 1000

/**
 * One client's view of a run's frames, delivered in seq order without gaps or duplicates: backfill
 * from Postgres, then live frames from the hub. A client that cannot keep up never slows anyone
 * else: its live frames are dropped while its buffer is full, and once it drains it gets a `resync`
 * control message followed by the missed frames, read again from Postgres.
 */
export class RunSubscription implements FrameListener {
  private state: 'catching_up' | 'live' | 'lagging' | 'closed' = 'catching_up'
  private pending: LiveFrame[] = []
  private behindTo = 0
  private dropped = 0
  private drainTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private unsubscribe: (() => void) | undefined

  constructor(
    private readonly runId: string,
    private lastSeq: number,
    private readonly hub: RunFramesHub,
    private readonly events: EventsRepository,
    private readonly sink: FrameSink,
    private readonly limits: StreamLimits,
    private readonly stats: StreamStats,
    private readonly log: Logger,
  ) {}

  /** Subscribes to live frames first, so nothing written during the backfill is missed. */
  async start(): Promise<void> {
    await this.hub.ready()
    this.unsubscribe = this.hub.subscribe(this.runId, this)
    this.control({ type: 'subscribed', run_id: this.runId, from_seq: this.lastSeq })
    this.heartbeatTimer = setInterval(() => {
      if (this.state !== 'lagging')
        this.control({ type: 'heartbeat', last_seq: this.lastSeq, ts: new Date().toISOString() })
    }, this.limits.heartbeatMs)
    await this.catchUp()
  }

  stop(): void {
    this.state = 'closed'
    this.unsubscribe?.()
    clearInterval(this.heartbeatTimer)
    clearInterval(this.drainTimer)
    this.pending = []
  }

  onLive(live: LiveFrame): void {
    const seq = live.frame.seq
    if (this.state === 'closed' || seq <= this.lastSeq) return
    if (this.state === 'catching_up') {
      if (this.pending.length < MAX_PENDING) this.pending.push(live)
      else this.behindTo = Math.max(this.behindTo, seq)
      return
    }
    if (this.state === 'lagging') {
      this.drop()
      return
    }
    if (seq !== this.lastSeq + 1) {
      this.behindTo = Math.max(this.behindTo, seq)
      void this.catchUp()
      return
    }
    this.emit(live)
  }

  onBehind(maxSeq: number): void {
    if (maxSeq <= this.lastSeq || this.state === 'closed') return
    this.behindTo = Math.max(this.behindTo, maxSeq)
    if (this.state === 'live') void this.catchUp()
  }

  private control(message: ControlMessage): void {
    this.sink.send(JSON.stringify(message))
  }

  private drop(): void {
    this.dropped++
    this.stats.droppedFrames++
  }

  /** Sends one frame unless the client's buffer is full; then it starts lagging. */
  private emit(live: LiveFrame): boolean {
    if (this.sink.bufferedBytes() > this.limits.highWaterBytes) {
      this.state = 'lagging'
      this.drop()
      this.pending = []
      this.drainTimer ??= setInterval(() => this.checkDrained(), 50)
      return false
    }
    this.sink.sendFrame(live)
    this.lastSeq = live.frame.seq
    return true
  }

  private checkDrained(): void {
    if (this.state !== 'lagging' || this.sink.bufferedBytes() > this.limits.lowWaterBytes) return
    clearInterval(this.drainTimer)
    this.drainTimer = undefined
    this.stats.resyncs++
    this.control({ type: 'resync', dropped: this.dropped, from_seq: this.lastSeq })
    this.dropped = 0
    void this.catchUp()
  }

  /** Reads frames after lastSeq from Postgres, then replays what arrived live meanwhile. */
  private async catchUp(): Promise<void> {
    this.state = 'catching_up'
    try {
      for (;;) {
        const rows = await this.events.listAfter(this.runId, this.lastSeq, PAGE)
        if (this.state !== 'catching_up') return
        for (const row of rows) if (!this.emit(toLiveFrame(eventToFrame(row)))) return
        if (rows.length === PAGE) continue
        const pending = this.pending.sort((a, b) => a.frame.seq - b.frame.seq)
        this.pending = []
        let gap = false
        for (const live of pending) {
          if (live.frame.seq <= this.lastSeq) continue
          if (live.frame.seq !== this.lastSeq + 1) {
            gap = true
            break
          }
          if (!this.emit(live)) return
        }
        if (gap || this.behindTo > this.lastSeq) {
          this.behindTo = 0
          continue
        }
        break
      }
      this.state = 'live'
    } catch (err) {
      if ((this.state as string) === 'closed') return
      this.log.error({ err, runId: this.runId }, 'stream backfill failed')
      this.sink.close('backfill failed')
      this.stop()
    }
  }
}
