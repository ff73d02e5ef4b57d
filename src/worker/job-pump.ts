import type { Job, PgBoss } from 'pg-boss'
import type { Logger } from '../log.ts'
import { JOB_HEARTBEAT_SECONDS } from '../queue/boss.ts'
import type { TrainRunJob } from '../queue/jobs.ts'

export interface JobPumpOptions {
  boss: PgBoss
  /** Looked at in this order whenever a slot is free: the first queue with a job wins. */
  queues: string[]
  /** Jobs in hand at once, over all the queues together. */
  concurrency: number
  pollingIntervalMs: number
  log: Logger
  /** Trains the run; a throw fails the job, which pg-boss retries. */
  handle(runId: string): Promise<void>
}

export interface JobPump {
  /** Takes no more jobs and waits for those in hand to be settled. */
  stop(): Promise<void>
}

/**
 * Takes train-run jobs from several queues under one concurrency limit, which pg-boss's `work()`
 * (one subscription, and one limit, per queue) cannot do: a worker with a GPU serves its device's
 * queue and the shared one, and still trains at most `concurrency` runs. Jobs are fetched when a slot
 * is free (on a timer, and as soon as a job ends), kept alive with heartbeats while they run, and
 * completed or failed when their handler settles.
 */
export function startJobPump(o: JobPumpOptions): JobPump {
  const inHand = new Set<Promise<unknown>>()
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let filling: Promise<void> = Promise.resolve()

  const run = (queue: string, job: Job<TrainRunJob>) => {
    // pg-boss fails (and retries) a job of a heartbeat queue that stays silent that long.
    const heartbeat = setInterval(
      () => o.boss.touch(queue, job).catch((err) => o.log.warn({ err, queue }, 'job heartbeat failed')),
      ((job.heartbeatSeconds ?? JOB_HEARTBEAT_SECONDS) * 1000) / 3,
    )
    const settled = o
      .handle(job.data.runId)
      .then(
        () => o.boss.complete(queue, job),
        (err: Error) => o.boss.fail(queue, job, { message: err?.message ?? String(err) }),
      )
      .catch((err) => o.log.error({ err, queue, jobId: job.id }, 'settling a job failed'))
      .finally(() => {
        clearInterval(heartbeat)
        inHand.delete(settled)
        wake()
      })
    inHand.add(settled)
  }

  const fill = async () => {
    for (const queue of o.queues) {
      while (!stopped && inHand.size < o.concurrency) {
        const [job] = await o.boss.fetch<TrainRunJob>(queue, { batchSize: 1 })
        if (!job) break
        run(queue, job)
      }
    }
  }

  /** Fetches now (after any fetch in progress), then again after the polling interval. */
  function wake(): void {
    if (stopped) return
    clearTimeout(timer)
    filling = filling
      .then(fill)
      .catch((err) => o.log.warn({ err }, 'fetching jobs failed'))
      .finally(() => {
        if (stopped) return
        clearTimeout(timer)
        timer = setTimeout(wake, o.pollingIntervalMs)
      })
  }

  wake()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await filling
      await Promise.all(inHand)
    },
  }
}
