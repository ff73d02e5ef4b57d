import { PgBoss } from 'pg-boss'
import type { Db } from '../db/client.ts'
import type { Logger } from '../log.ts'
import { TRAIN_RUN_QUEUES, type TrainRunJob, trainQueueFor, WEBHOOK_QUEUE, type WebhookJob } from './jobs.ts'

/**
 * Seconds without a worker heartbeat after which pg-boss fails the job and retries it elsewhere
 * (pg-boss's minimum): with SUPERVISE_SECONDS and the retry delay, a dead worker's run is taken over
 * within about 15 s.
 */
export const JOB_HEARTBEAT_SECONDS = 10
/** How often pg-boss looks for jobs whose heartbeat stopped (its default, 60 s, would dominate takeover). */
export const SUPERVISE_SECONDS = 2

export async function createBoss(databaseUrl: string, log: Logger): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    max: 4,
    schema: 'pgboss',
    superviseIntervalSeconds: SUPERVISE_SECONDS,
    monitorIntervalSeconds: SUPERVISE_SECONDS,
  })
  boss.on('error', (err) => log.error({ err }, 'pg-boss error'))
  await boss.start()
  await createQueues(boss).catch(async (e) => {
    await boss.stop({ graceful: false })
    throw e
  })
  return boss
}

async function createQueues(boss: PgBoss): Promise<void> {
  if (!(await boss.getQueue(WEBHOOK_QUEUE))) {
    await boss.createQueue(WEBHOOK_QUEUE, {
      retryLimit: 8,
      retryDelay: 5,
      retryBackoff: true,
      expireInSeconds: 60,
    })
  }
  const trainQueue = {
    // Liveness comes from heartbeats; the expiry is pg-boss's maximum (a longer run is retried and
    // resumes from its last checkpoint).
    expireInSeconds: 24 * 3600,
    heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
    retryLimit: 5,
    retryDelay: 1,
  }
  for (const queue of TRAIN_RUN_QUEUES) {
    // Queues made by an earlier version are brought to the current settings (new jobs take them).
    if (await boss.getQueue(queue)) await boss.updateQueue(queue, trainQueue)
    else await boss.createQueue(queue, trainQueue)
  }
}

/** pg-boss statements run through the caller's Prisma transaction, so a job and its run row commit together. */
function prismaExecutor(db: Db) {
  return {
    executeSql: async (text: string, values: unknown[] = []) => ({
      rows: await db.$queryRawUnsafe<unknown[]>(text, ...values),
    }),
  }
}

/** Queues an attempt of `run` where the workers with its device look. */
export async function enqueueRun(
  boss: PgBoss,
  db: Db,
  run: { id: string; device: string },
): Promise<string | null> {
  const data: TrainRunJob = { runId: run.id }
  return boss.send(trainQueueFor(run.device), data, { singletonKey: run.id, db: prismaExecutor(db) })
}

export type { PgBoss }

export async function enqueueWebhook(boss: PgBoss, db: Db, payload: WebhookJob): Promise<string | null> {
  return boss.send(WEBHOOK_QUEUE, payload, { db: prismaExecutor(db) })
}

/** Stops pg-boss at shutdown; connection errors caused by the shutdown itself are not reported as errors. */
export async function stopBoss(boss: PgBoss, log: Logger): Promise<void> {
  boss.removeAllListeners('error')
  boss.on('error', (err) => log.debug({ err }, 'pg-boss error while stopping'))
  await boss.stop({ graceful: true, timeout: 10_000 })
}
