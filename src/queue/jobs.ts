import Type, { type Static } from 'typebox'

/** pg-boss queue that carries one job per run attempt. */
export const TRAIN_RUN_QUEUE = 'train-run'

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
