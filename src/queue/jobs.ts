import Type, { type Static } from 'typebox'

/** pg-boss queue that carries one job per run attempt of runs any worker can train (`auto`, `cpu`). */
export const TRAIN_RUN_QUEUE = 'train-run'

/** Devices a run can ask for that not every worker has: their runs wait in a queue of their own. */
export const GPU_DEVICES = ['webgpu', 'cuda'] as const
export type GpuDevice = (typeof GPU_DEVICES)[number]

/** The queue of a run asking for `device`: only workers with that device take from it. */
export function trainQueueFor(device: string): string {
  return (GPU_DEVICES as readonly string[]).includes(device)
    ? `${TRAIN_RUN_QUEUE}-${device}`
    : TRAIN_RUN_QUEUE
}

export const TRAIN_RUN_QUEUES = [TRAIN_RUN_QUEUE, ...GPU_DEVICES.map(trainQueueFor)]

export const TrainRunJobSchema = Type.Object({ runId: Type.String({ format: 'uuid' }) })
export type TrainRunJob = Static<typeof TrainRunJobSchema>

/** pg-boss queue of webhook deliveries, one job per run status change. */
export const WEBHOOK_QUEUE = 'run-webhook'

export interface WebhookJob {
  event: 'run.status_changed'
  run_id: string
  status: string
  step: number
  error: { code: string; message: string } | null
  at: string
}
