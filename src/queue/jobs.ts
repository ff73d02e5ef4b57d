import Type, { type Static } from 'typebox'

/** pg-boss queue that carries one job per run attempt. */
export const TRAIN_RUN_QUEUE = 'train-run'

export const TrainRunJobSchema = Type.Object({ runId: Type.String({ format: 'uuid' }) })
export type TrainRunJob = Static<typeof TrainRunJobSchema>
