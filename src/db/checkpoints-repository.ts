import { randomUUID } from 'node:crypto'
import type { Db } from './client.ts'
import { notifyResourceChange } from './resource-changes.ts'

export interface StoredCheckpoint {
  id: string
  runId: string
  step: number
  iteration: number
  kind: 'full' | 'lora'
  dir: string
  bytes: number
  createdAt: Date
}

const select = {
  id: true,
  runId: true,
  step: true,
  iteration: true,
  kind: true,
  dir: true,
  bytes: true,
  createdAt: true,
} as const

function toStored(r: {
  id: string
  runId: string
  step: number
  iteration: number
  kind: string
  dir: string
  bytes: bigint
  createdAt: Date
}): StoredCheckpoint {
  return { ...r, kind: r.kind as StoredCheckpoint['kind'], bytes: Number(r.bytes) }
}

export function createCheckpointsRepository(db: Db) {
  return {
    /** Idempotent per (run, step): a resumed attempt that re-saves a step keeps the first row. */
    async upsert(input: Omit<StoredCheckpoint, 'id' | 'createdAt'>): Promise<StoredCheckpoint> {
      const row = await db.checkpoint.upsert({
        where: { runId_step: { runId: input.runId, step: input.step } },
        create: { id: randomUUID(), ...input, bytes: BigInt(input.bytes) },
        update: { dir: input.dir, bytes: BigInt(input.bytes), kind: input.kind, iteration: input.iteration },
        select,
      })
      await notifyResourceChange(db, { run_id: input.runId, row: false })
      return toStored(row)
    },
    async listByRun(runId: string): Promise<StoredCheckpoint[]> {
      return (await db.checkpoint.findMany({ where: { runId }, orderBy: { step: 'asc' }, select })).map(
        toStored,
      )
    },
    async findById(runId: string, id: string): Promise<StoredCheckpoint | null> {
      const row = await db.checkpoint.findFirst({ where: { id, runId }, select })
      return row ? toStored(row) : null
    },
    async findLatest(runId: string): Promise<StoredCheckpoint | null> {
      const row = await db.checkpoint.findFirst({ where: { runId }, orderBy: { step: 'desc' }, select })
      return row ? toStored(row) : null
    },
  }
}
export type CheckpointsRepository = ReturnType<typeof createCheckpointsRepository>
