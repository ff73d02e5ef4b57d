import type { Frame } from '../schemas/stream.ts'
import type { Db, PrismaClient } from './client.ts'
import { createEventsRepository } from './events-repository.ts'

/** Postgres NOTIFY channel carrying new run frames to every API process. */
export const RUN_FRAMES_CHANNEL = 'run_frames'

/** NOTIFY payloads are limited to 8000 bytes; larger batches only announce their last seq. */
const MAX_NOTIFY_BYTES = 7500

export interface NewFrame {
  type: string
  step: number
  data: Record<string, unknown>
}

/** NOTIFY payload: the frames themselves, or only the last seq when they did not fit. */
export interface FramesNotification {
  run_id: string
  frames?: Frame[]
  max_seq: number
}

/**
 * Appends frames to a run's stream inside the caller's transaction: the run row is locked so that
 * writers (the worker, API status changes) get consecutive seqs, and the NOTIFY is delivered at
 * commit, together with the rows.
 */
export async function appendRunFrames(tx: Db, runId: string, frames: NewFrame[]): Promise<Frame[]> {
  if (frames.length === 0) return []
  await tx.$executeRaw`SELECT 1 FROM runs WHERE id = ${runId}::uuid FOR UPDATE`
  const events = createEventsRepository(tx)
  const start = await events.maxSeq(runId)
  const createdAt = new Date()
  const rows = frames.map((f, i) => ({ ...f, seq: start + i + 1, createdAt }))
  await events.createMany(runId, rows)
  const out: Frame[] = rows.map((r) => ({
    type: r.type,
    seq: r.seq,
    step: r.step,
    data: r.data,
    ts: createdAt.toISOString(),
  }))
  const maxSeq = start + frames.length
  let payload = JSON.stringify({ run_id: runId, frames: out, max_seq: maxSeq } satisfies FramesNotification)
  if (Buffer.byteLength(payload) > MAX_NOTIFY_BYTES)
    payload = JSON.stringify({ run_id: runId, max_seq: maxSeq })
  await tx.$executeRaw`SELECT pg_notify(${RUN_FRAMES_CHANNEL}, ${payload})`
  return out
}

/** The same in its own transaction. */
export function appendRunFramesNow(
  prisma: PrismaClient,
  runId: string,
  frames: NewFrame[],
): Promise<Frame[]> {
  return prisma.$transaction((tx) => appendRunFrames(tx, runId, frames))
}
