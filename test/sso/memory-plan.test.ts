/**
 * The memory planner: the largest micro-batch that fits, checkpointing only when nothing fits without
 * it; within the budget, a training pass under the activation target when activations dominate.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parameterCount, parseLlamaConfig } from '../../src/model/config.ts'
import { tinyConfigJson } from '../../src/model/tiny.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { ACTIVATION_TARGET_BYTES, estimateRunMemory, planRunMemory } from '../../src/sso/memory-plan.ts'

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
  // no activation target: the budget alone decides
  const plan = (budget: number) => planRunMemory(cfg, 'dpo', hp, budget, Infinity)
  const roomy = plan(bytes(8, false))
  assert.deepEqual([roomy.microBatchSize, roomy.checkpoint], [8, false])
  const between = plan(bytes(4, false) + 1)
  assert.deepEqual([between.microBatchSize, between.checkpoint], [4, false])
  const tight = bytes(1, false) - 1
  const tightPlan = plan(tight)
  assert.equal(tightPlan.checkpoint, true)
  assert.ok(tightPlan.estimate.bytes <= tight)
  // fixed settings are kept: only the auto ones are planned
  const fixed = planRunMemory(cfg, 'dpo', { ...hp, gradient_checkpointing: false, micro_batch_size: 3 }, 1e12)
  assert.deepEqual([fixed.microBatchSize, fixed.checkpoint], [2, false])
  assert.throws(
    () => planRunMemory(cfg, 'dpo', hp, 2 ** 20),
    (e: Error & { details?: { estimate_bytes: number } }) =>
      /budget of 0\.00 GB/.test(e.message) && e.details!.estimate_bytes === bytes(1, true),
  )
})

test('within the budget, a step whose activations dominate is split under the activation target', () => {
  const training = (micro: number, checkpoint: boolean) =>
    estimateRunMemory(cfg, 'dpo', hp, micro, checkpoint).parts.training_session
  // the 10M model at 8 x 2 rows of 512 tokens: the step's activations are most of the run's peak
  assert.ok(training(8, false) > bytes(8, false) / 2 && training(8, false) > ACTIVATION_TARGET_BYTES)
  const planned = planRunMemory(cfg, 'dpo', hp, 1e12)
  assert.ok(planned.estimate.parts.training_session <= ACTIVATION_TARGET_BYTES)
  // the first plan in the planner's order that is under the target
  const first = [false, true]
    .flatMap((checkpoint) => [8, 4, 2, 1].map((micro) => ({ micro, checkpoint })))
    .find((p) => training(p.micro, p.checkpoint) <= ACTIVATION_TARGET_BYTES)!
  assert.deepEqual([planned.microBatchSize, planned.checkpoint], [first.micro, first.checkpoint])
  // without recomputation allowed, the micro-batch alone is split: the smallest when none is under it
  const noCheckpoint = planRunMemory(cfg, 'dpo', { ...hp, gradient_checkpointing: false }, 1e12)
  assert.equal(noCheckpoint.checkpoint, false)
  assert.ok(noCheckpoint.microBatchSize < 8)
})

test('for larger models the activation target splits micro-batches but does not turn on checkpointing', () => {
  const parsed50m = parseLlamaConfig(tinyConfigJson('50m', { '<|endoftext|>': 0, '<|im_end|>': 1 }))
  if (!('config' in parsed50m)) throw new Error(parsed50m.problems.join('; '))
  const whole = estimateRunMemory(parsed50m.config, 'dpo', hp, 8, false)
  assert.ok(whole.parts.training_session > whole.bytes / 2)
  const planned = planRunMemory(parsed50m.config, 'dpo', hp, 1e12)
  assert.equal(planned.checkpoint, false)
  assert.ok(planned.microBatchSize < 8)
})

test('weights_dtype: half frozen weights count 2 bytes per parameter (LoRA base); full fine-tuning holds no reference copy', () => {
  const params = parameterCount(cfg)
  const parts = (finetuning: 'lora' | 'full', weights_dtype: 'float32' | 'bfloat16') =>
    estimateRunMemory(cfg, 'dpo', { ...hp, finetuning, weights_dtype }, 1, false).parts
  assert.equal(parts('lora', 'float32').weights, 4 * params)
  assert.equal(parts('lora', 'bfloat16').weights, 2 * params)
  assert.equal(parts('full', 'bfloat16').weights, 4 * params) // trained weights stay float32
  assert.deepEqual(parts('full', 'bfloat16'), parts('full', 'float32'))
  // the upcast inside the graphs is counted among the activations, not for free
  assert.ok(parts('lora', 'bfloat16').scoring_session >= parts('lora', 'float32').scoring_session)
})

test('gradient_dtype: float16 gradients save 2 bytes per trained parameter in the optimizer and in the step', () => {
  const params = parameterCount(cfg)
  const parts = (gradient_dtype: 'float32' | 'float16', micro: number) =>
    estimateRunMemory(cfg, 'dpo', { ...hp, finetuning: 'full', gradient_dtype }, micro, true).parts
  assert.equal(parts('float32', 8).optimizer - parts('float16', 8).optimizer, 2 * params)
  // later micro-batches' host copies of their gradients
  assert.equal(
    parts('float32', 1).accumulated_gradients - parts('float16', 1).accumulated_gradients,
    2 * params,
  )
  // recomputing, the step peaks at the end of its backward pass, all gradient outputs allocated (the
  // float32 values they are made from are transient, one tensor at a time)
  assert.ok(parts('float32', 1).training_session - parts('float16', 1).training_session > params)
})

test('a refused run is told what the storage settings it does not use would need, and whether that fits', () => {
  const full = { ...hp, finetuning: 'full' as const }
  const compact = estimateRunMemory(
    cfg,
    'dpo',
    { ...full, optimizer_state_dtype: 'bfloat16', gradient_dtype: 'float16' },
    1,
    true,
  ).bytes
  const smallest = estimateRunMemory(cfg, 'dpo', full, 1, true).bytes
  assert.ok(compact < smallest)
  const refusal = (h: typeof full, budget: number) => {
    try {
      planRunMemory(cfg, 'dpo', h, budget)
    } catch (e) {
      return e as Error & { details: Record<string, unknown> }
    }
    throw new Error('the run was not refused')
  }
  const fits = refusal(full, compact + 1)
  assert.match(
    fits.message,
    /with optimizer_state_dtype: bfloat16 and gradient_dtype: float16 it would need \d+\.\d\d GB, which fits/,
  )
  assert.deepEqual(fits.details.compact_storage, {
    settings: 'optimizer_state_dtype: bfloat16 and gradient_dtype: float16',
    estimate_bytes: compact,
  })
  assert.doesNotMatch(refusal(full, compact - 1).message, /which fits/)
  // a run that uses them already is not told about them
  const already = refusal({ ...full, optimizer_state_dtype: 'bfloat16', gradient_dtype: 'float16' }, 2 ** 20)
  assert.equal(already.details.compact_storage, undefined)
})
