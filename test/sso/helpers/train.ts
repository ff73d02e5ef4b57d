/** Runs the trainer to the end with no control signals, keeping every metrics batch it reports. */
import assert from 'node:assert/strict'
import { runTrainer } from '../../../src/sso/trainer.ts'
import type { MetricsBatch, RunTrainer, TrainerJob } from '../../../src/sso/trainer-interface.ts'

/** The batches in order; fails unless the run succeeded. */
export async function trainToEnd(job: TrainerJob, train: RunTrainer = runTrainer): Promise<MetricsBatch[]> {
  const metrics: MetricsBatch[] = []
  const result = await train(job, {
    onMetrics: (b) => metrics.push(b),
    onEvent: () => {},
    onCheckpoint: () => {},
    control: () => 'continue',
  })
  assert.equal(result.status, 'succeeded', JSON.stringify(result))
  return metrics
}
