/**
 * The sso run the interruption tests train: six queries, two per step, a checkpoint every two steps
 * and short generations, so that a few iterations give every moment worth interrupting (training
 * with a checkpoint behind it, generating the next iteration) within a minute or two on two cores.
 * A test may override hyperparameters.
 */
import assert from 'node:assert/strict'
import type { TestApp } from '../helpers/build-app.ts'
import { createTinyRun, uploadQueries } from '../helpers/datasets.ts'

export async function createInterruptibleRun(
  app: TestApp,
  {
    iterations,
    seed,
    hyperparameters,
  }: { iterations: number; seed: number; hyperparameters?: Record<string, unknown> },
): Promise<string> {
  const prompts = ['Say hi.', 'Name a tree.', 'Count to two.', 'Greet me.', 'Name a fruit.', 'Say bye.']
  const created = await createTinyRun(app, {
    dataset_ids: [await uploadQueries(app, prompts)],
    device: 'cpu',
    seed,
    hyperparameters: {
      iterations,
      batch_size: 2,
      lr: 1e-3,
      max_new_tokens: 24,
      generation_batch_size: 2,
      checkpoint_every: 2,
      ...hyperparameters,
    },
  })
  assert.equal(created.statusCode, 201, created.body)
  return created.json().id
}
