import type { Db } from './client.ts'

/**
 * Postgres NOTIFY channel announcing writes that are not run frames, so every API process can drop
 * what its read cache holds about them: a run's row or results written outside appendRunFrames
 * (claim, heartbeat, release, samples, checkpoints), and the principle-set, dataset and model
 * collections. Frames announce themselves on RUN_FRAMES_CHANNEL.
 */
export const RESOURCE_CHANGES_CHANNEL = 'resource_changes'

/** Collections cached as a whole: any write to one of their rows drops every cached read of them. */
export type CollectionName = 'principle_sets' | 'datasets' | 'models'

/** NOTIFY payload: a run (its row, shown in run lists too, or only its results) or a collection. */
export type ResourceChange = { run_id: string; row: boolean } | { collection: CollectionName }

/** Inside a transaction the notification is delivered at commit, together with the write. */
export async function notifyResourceChange(db: Db, change: ResourceChange): Promise<void> {
  await db.$executeRaw`SELECT pg_notify(${RESOURCE_CHANGES_CHANNEL}, ${JSON.stringify(change)})`
}
