/** The memory planner: the largest micro-batch that fits, checkpointing only when nothing fits without it. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { tinyConfigJson } from '../../src/model/tiny.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { estimateRunMemory, planRunMemory } from '../../src/sso/memory-plan.ts'

const parsed = parseLlamaConfig(tinyConfigJson('10m', { '<|endoftext|>': 0, '<|im_end|>': 1 }))
if (!('config' in parsed)) throw new Error(parsed.problems.join('; '))
const cfg = parsed.config
const hp = resolveHyperparameters('dpo', { batch_size: 8, max_prompt_tokens: 256, max_new_tokens: 256 })
const bytes = (micro: number, checkpoint: boolean) =>
  estimateRunMemory(cfg, 'dpo', hp, micro, checkpoint).bytes

test('estimates grow with the micro-batch and shrink with checkpointing', { timeout: 60_000 }, () => {
  assert.ok(bytes(1, false) < bytes(2, false) && bytes(2, false) < bytes(8, false))
  assert.ok(bytes(8, true) < bytes(8, false))
})

test('the planner picks the largest micro-batch that fits, then checkpointing', { timeout: 60_000 }, () => {
  const roomy = planRunMemory(cfg, 'dpo', hp, bytes(8, false))
  assert.deepEqual([roomy.microBatchSize, roomy.checkpoint], [8, false])
  const between = planRunMemory(cfg, 'dpo', hp, bytes(4, false) + 1)
  assert.deepEqual([between.microBatchSize, between.checkpoint], [4, false])
  const tight = bytes(1, false) - 1
  const plan = planRunMemory(cfg, 'dpo', hp, tight)
  assert.equal(plan.checkpoint, true)
  assert.ok(plan.estimate.bytes <= tight)
  // fixed settings are kept: only the auto ones are planned
  const fixed = planRunMemory(cfg, 'dpo', { ...hp, gradient_checkpointing: false, micro_batch_size: 3 }, 1e12)
  assert.deepEqual([fixed.microBatchSize, fixed.checkpoint], [2, false])
  assert.throws(
    () => planRunMemory(cfg, 'dpo', hp, 2 ** 20),
    (e: Error & { details?: { estimate_bytes: number } }) =>
      /budget of 0\.00 GB/.test(e.message) && e.details!.estimate_bytes === bytes(1, true),
  )
})
