/**
 * Fitting a run into a memory budget: the largest micro-batch, without gradient checkpointing if it
 * fits and with it otherwise, whose estimated peak (src/model/memory-estimate.ts) stays within the
 * budget; the settings a run fixes itself are kept. No fit at all is an error naming estimate and budget.
 */
import { ValidationError } from '../errors.ts'
import type { LlamaConfig } from '../model/config.ts'
import { estimatePolicyMemory, type MemoryEstimate } from '../model/memory-estimate.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import { OBJECTIVE_ROLES, type ObjectiveName } from './loss-types.ts'
import type { TrainingMethod } from './trainer-interface.ts'

export interface MemoryPlan {
  microBatchSize: number
  checkpoint: boolean
  estimate: MemoryEstimate
  budgetBytes: number
}

/** The objectives a method trains with (SSO v2 also trains its generator, a second policy). */
const METHOD_OBJECTIVES: Record<Exclude<TrainingMethod, 'rm'>, ObjectiveName[]> = {
  sso: ['sso'],
  pbaa: ['sso'],
  sso_v2: ['preference', 'sso_generator'],
  dpo: ['preference'],
  ipo: ['preference'],
  sft: ['sft'],
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GB`

/** Divisors of n, largest first: the micro-batch sizes that split a batch_size group evenly. */
function divisorsDescending(n: number): number[] {
  const out: number[] = []
  for (let d = n; d >= 1; d--) if (n % d === 0) out.push(d)
  return out
}

/** The estimated peak of a run with `microBatchSize` examples per pass. */
export function estimateRunMemory(
  cfg: LlamaConfig,
  method: Exclude<TrainingMethod, 'rm'>,
  hp: Hyperparameters,
  microBatchSize: number,
  checkpoint: boolean,
): MemoryEstimate {
  const roles = Math.max(...METHOD_OBJECTIVES[method].map((o) => OBJECTIVE_ROLES[o].roles.length))
  const estimate = estimatePolicyMemory(
    cfg,
    {
      trainRows: roles * microBatchSize,
      batchRows: hp.generation_batch_size,
      seq: hp.max_prompt_tokens + hp.max_new_tokens,
      promptTokens: hp.max_prompt_tokens,
      checkpoint,
    },
    {
      lora: hp.finetuning === 'lora' ? hp.lora : undefined,
      optimizerStateDtype: hp.optimizer_state_dtype,
    },
  )
  if (method !== 'sso_v2') return estimate
  // the generator is a fork of the policy: its own weights and optimizer, sessions of the same sizes
  const { weights, optimizer } = estimate.parts
  const generator = weights + optimizer
  return { bytes: estimate.bytes + generator, parts: { ...estimate.parts, generator } }
}

/**
 * The plan for a run within `budgetBytes`; throws a ValidationError with the smallest estimate and the
 * budget when nothing fits.
 */
export function planRunMemory(
  cfg: LlamaConfig,
  method: Exclude<TrainingMethod, 'rm'>,
  hp: Hyperparameters,
  budgetBytes: number,
): MemoryPlan {
  const sizes =
    hp.micro_batch_size === 'auto'
      ? divisorsDescending(hp.batch_size)
      : [divisorsDescending(hp.batch_size).find((d) => d <= (hp.micro_batch_size as number))!]
  // recomputation costs about a third more compute per step: only when no micro-batch fits without it
  const modes = hp.gradient_checkpointing === 'auto' ? [false, true] : [hp.gradient_checkpointing]
  let smallest: MemoryPlan | undefined
  for (const checkpoint of modes) {
    for (const microBatchSize of sizes) {
      const estimate = estimateRunMemory(cfg, method, hp, microBatchSize, checkpoint)
      const plan = { microBatchSize, checkpoint, estimate, budgetBytes }
      if (estimate.bytes <= budgetBytes) return plan
      if (!smallest || estimate.bytes < smallest.estimate.bytes) smallest = plan
    }
  }
  const s = smallest!
  throw new ValidationError(
    `the run needs an estimated ${gb(s.estimate.bytes)} of memory even with micro-batches of ${s.microBatchSize}` +
      `${s.checkpoint ? ' and gradient checkpointing' : ''}, above the worker's budget of ${gb(budgetBytes)} per run ` +
      '(WORKER_MEMORY_GB / WORKER_CONCURRENCY): use LoRA, bfloat16 optimizer state, shorter max_prompt_tokens or ' +
      'max_new_tokens, a smaller generation_batch_size, or a worker with more memory',
    {
      estimate_bytes: s.estimate.bytes,
      budget_bytes: budgetBytes,
      micro_batch_size: s.microBatchSize,
      gradient_checkpointing: s.checkpoint,
      parts: s.estimate.parts,
    },
  )
}
