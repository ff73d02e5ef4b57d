import type { FastifyBaseLogger as Logger } from 'fastify'
import pg from 'pg'
import { RESOURCE_CHANGES_CHANNEL } from '../../db/resource-changes.ts'
import { type FramesNotification, RUN_FRAMES_CHANNEL } from '../../db/run-frames.ts'
import type { RunEventDto } from '../../schemas/runs.ts'
import type { Frame } from '../../schemas/stream.ts'

/** A frame with its JSON text and UTF-8 bytes, made once for all subscribers of a process. */
export interface LiveFrame {
  frame: Frame
  text: string
  bytes: Buffer
}

export interface FrameListener {
  onLive(frame: LiveFrame): void
  /** Frames up to `maxSeq` exist but were not carried by the notification: fetch them. */
  onBehind(maxSeq: number): void
}

/** Sees every change this process hears of, for all runs (the read cache drops what changed). */
export interface ChangeObserver {
  runFrames(note: FramesNotification): void
  /** A payload on RESOURCE_CHANGES_CHANNEL. */
  resourceChanged(payload: string): void
  /** The LISTEN connection failed: changes go unheard until `listening` is true again. */
  disconnected(): void
}

export function eventToFrame(e: RunEventDto): Frame {
  return { type: e.type, seq: e.seq, step: e.step, data: e.data, ts: e.created_at }
}

export function toLiveFrame(frame: Frame): LiveFrame {
  const text = JSON.stringify(frame)
  return { frame, text, bytes: Buffer.from(text) }
}

/**
 * One LISTEN connection per API process: frames the workers NOTIFY are fanned out in-process to the
 * listeners of their run. Listeners that see a gap (a lost or oversized notification) refetch from
 * Postgres themselves, so delivery stays gap-free. Observers see every frame and resource change.
 */
export class RunFramesHub {
  private readonly listeners = new Map<string, Set<FrameListener>>()
  private readonly observers = new Set<ChangeObserver>()
  private client: pg.Client | null = null
  private closed = false
  framesReceived = 0

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {}

  private starting: Promise<void> | undefined

  /** Opens the LISTEN connection on first use (the app can be built, e.g. for its OpenAPI, without one). */
  ready(): Promise<void> {
    this.starting ??= this.listen().catch((e) => {
      this.starting = undefined
      throw e
    })
    return this.starting
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'run-frames-hub' })
    client.on('notification', (msg) => {
      if (!msg.payload) return
      if (msg.channel === RUN_FRAMES_CHANNEL) this.dispatch(msg.payload)
      else if (msg.channel === RESOURCE_CHANGES_CHANNEL)
        for (const observer of this.observers) observer.resourceChanged(msg.payload)
    })
    client.on('error', (err) => {
      this.log.warn({ err }, 'run frames LISTEN connection failed; reconnecting')
      this.client = null
      this.starting = undefined
      for (const observer of this.observers) observer.disconnected()
      // Listeners may have missed frames meanwhile: they refetch from their last seq.
      if (!this.closed)
        setTimeout(
          () =>
            this.ready().then(
              () => this.nudgeAll(),
              () => {},
            ),
          1000,
        )
    })
    await client.connect()
    await client.query(`LISTEN ${RUN_FRAMES_CHANNEL}; LISTEN ${RESOURCE_CHANGES_CHANNEL}`)
    if (this.closed) {
      await client.end()
      return
    }
    this.client = client
  }

  private nudgeAll(): void {
    for (const set of this.listeners.values())
      for (const listener of set) listener.onBehind(Number.MAX_SAFE_INTEGER)
  }

  async close(): Promise<void> {
    this.closed = true
    await this.client?.end().catch(() => {})
    this.client = null
  }

  /** True while the LISTEN connection is up: every change committed since then is heard. */
  get listening(): boolean {
    return this.client !== null
  }

  observe(observer: ChangeObserver): () => void {
    this.observers.add(observer)
    return () => this.observers.delete(observer)
  }

  subscribe(runId: string, listener: FrameListener): () => void {
    let set = this.listeners.get(runId)
    if (!set) {
      set = new Set()
      this.listeners.set(runId, set)
    }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.listeners.delete(runId)
    }
  }

  get subscriberCount(): number {
    let n = 0
    for (const set of this.listeners.values()) n += set.size
    return n
  }

  private dispatch(payload: string): void {
    let note: FramesNotification
    try {
      note = JSON.parse(payload)
    } catch {
      this.log.warn({ payload: payload.slice(0, 200) }, 'ignoring a malformed run frames notification')
      return
    }
    for (const observer of this.observers) observer.runFrames(note)
    const set = this.listeners.get(note.run_id)
    if (!set) return
    if (note.frames) this.deliver(set, note.frames)
    else for (const listener of set) listener.onBehind(note.max_seq)
  }

  private deliver(set: Set<FrameListener>, frames: Frame[]): void {
    for (const frame of frames) {
      this.framesReceived++
      const live = toLiveFrame(frame)
      for (const listener of set) listener.onLive(live)
    }
  }
}
