/**
 * Fitting a run into a memory budget: the largest micro-batch, without gradient checkpointing if it
 * fits and with it otherwise, whose estimated peak (src/model/memory-estimate.ts) stays within the
 * budget; the settings a run fixes itself are kept. No fit at all is an error naming estimate and budget.
 * Within the budget, a training pass is also kept under an activation target when the step's
 * activations are most of the run's memory (small models at long sequences): micro-batches split the
 * same gradient, and for small models recomputation saves most of the run's peak for a little more
 * training time.
 */
import { ValidationError } from '../errors.ts'
import type { LlamaConfig } from '../model/config.ts'
import { estimatePolicyMemory, type MemoryEstimate, peakOf } from '../model/memory-estimate.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import { type ObjectiveName, objectiveRoles, sharedPrompts } from './loss-types.ts'
import type { TrainingMethod } from './trainer-interface.ts'

/**
 * Estimated activations of one training pass a run need not exceed: the step's matrix products are
 * as fast per token at this size (measured on the tiny model's default run: micro-batches of 1 with
 * recomputation trained as fast as one pass of 4 examples, whose trainer process peaked at 2 GB).
 */
export const ACTIVATION_TARGET_BYTES = 2 ** 30

/**
 * Weights up to which recomputation is cheap enough to take for the target alone (32M float32
 * parameters): the step is then a small share of a run that generation dominates (the tiny model's
 * default run: its training phase 0-15% longer, the run within noise). Larger models micro-batch only.
 */
const CHEAP_RECOMPUTE_WEIGHT_BYTES = 128 * 2 ** 20

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

/**
 * The first of the fitting plans (in the planner's order of preference) whose training pass stays
 * under the target, or the one with the smallest pass when none does, if the step's activations are
 * most of the run's peak at the first plan; undefined when they are not (weights and optimizer state
 * dominate: recomputation would cost a third more compute for a small share of the peak). Plans with
 * recomputation count only for small models.
 */
function withinActivationTarget(fitting: MemoryPlan[], targetBytes: number): MemoryPlan | undefined {
  const first = fitting[0].estimate
  if (first.parts.training_session <= first.bytes / 2) return undefined
  const candidates =
    first.parts.weights <= CHEAP_RECOMPUTE_WEIGHT_BYTES ? fitting : fitting.filter((p) => !p.checkpoint)
  if (candidates.length === 0) return undefined
  const pass = (p: MemoryPlan) => p.estimate.parts.training_session
  return (
    candidates.find((p) => pass(p) <= targetBytes) ?? candidates.reduce((a, b) => (pass(b) < pass(a) ? b : a))
  )
}

/** The estimated peak of a run with `microBatchSize` examples per pass. */
export function estimateRunMemory(
  cfg: LlamaConfig,
  method: Exclude<TrainingMethod, 'rm'>,
  hp: Hyperparameters,
  microBatchSize: number,
  checkpoint: boolean,
): MemoryEstimate {
  // the objective with the largest estimate (SSO v2 trains two)
  const estimates = METHOD_OBJECTIVES[method].map((objective) => {
    const { roles } = objectiveRoles(objective, hp)
    const { prompts, branches } = sharedPrompts(roles)
    return estimatePolicyMemory(
      cfg,
      {
        trainRows: roles.length * microBatchSize,
        trainTrees: { rows: prompts * microBatchSize, branches },
        batchRows: hp.generation_batch_size,
        seq: hp.max_prompt_tokens + hp.max_new_tokens,
        promptTokens: hp.max_prompt_tokens,
        checkpoint,
        accumulates: microBatchSize < hp.batch_size || hp.grad_accum > 1,
      },
      {
        lora: hp.finetuning === 'lora' ? hp.lora : undefined,
        optimizerStateDtype: hp.optimizer_state_dtype,
        gradientDtype: hp.gradient_dtype,
        weightsDtype: hp.weights_dtype,
      },
    )
  })
  const estimate = estimates.reduce((a, b) => (b.bytes > a.bytes ? b : a))
  if (method !== 'sso_v2') return estimate
  // the generator is a fork of the policy: its own weights and optimizer, sessions of the same sizes;
  // while it trains, the policy keeps the generation sessions it sampled with
  const { weights, optimizer, generation } = estimate.parts
  const parts = { ...estimate.parts, generator: weights + optimizer + generation }
  return { bytes: peakOf(parts), parts }
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
  activationTargetBytes = ACTIVATION_TARGET_BYTES,
): MemoryPlan {
  const sizes =
    hp.micro_batch_size === 'auto'
      ? divisorsDescending(hp.batch_size)
      : [divisorsDescending(hp.batch_size).find((d) => d <= (hp.micro_batch_size as number))!]
  // recomputation costs about a third more compute per step: only when no micro-batch fits without it
  const modes = hp.gradient_checkpointing === 'auto' ? [false, true] : [hp.gradient_checkpointing]
  const plans: MemoryPlan[] = modes.flatMap((checkpoint) =>
    sizes.map((microBatchSize) => ({
      microBatchSize,
      checkpoint,
      estimate: estimateRunMemory(cfg, method, hp, microBatchSize, checkpoint),
      budgetBytes,
    })),
  )
  const fitting = plans.filter((p) => p.estimate.bytes <= budgetBytes)
  if (fitting.length > 0) return withinActivationTarget(fitting, activationTargetBytes) ?? fitting[0]
  const s = plans.reduce((a, b) => (b.estimate.bytes < a.estimate.bytes ? b : a))
  const compact = compactStorageEstimate(cfg, method, hp, plans)
  throw new ValidationError(
    `the run needs an estimated ${gb(s.estimate.bytes)} of memory even with micro-batches of ${s.microBatchSize}` +
      `${s.checkpoint ? ' and gradient checkpointing' : ''}, above the worker's budget of ${gb(budgetBytes)} per run ` +
      '(WORKER_MEMORY_GB / WORKER_CONCURRENCY)' +
      (compact
        ? `; with ${compact.settings} it would need ${gb(compact.bytes)}` +
          (compact.bytes <= budgetBytes ? ', which fits' : '')
        : '') +
      ': use LoRA, bfloat16 optimizer state, float16 gradients, shorter max_prompt_tokens or ' +
      'max_new_tokens, a smaller generation_batch_size, or a worker with more memory',
    {
      estimate_bytes: s.estimate.bytes,
      budget_bytes: budgetBytes,
      micro_batch_size: s.microBatchSize,
      gradient_checkpointing: s.checkpoint,
      parts: s.estimate.parts,
      ...(compact ? { compact_storage: { settings: compact.settings, estimate_bytes: compact.bytes } } : {}),
    },
  )
}

/**
 * The smallest estimate over the same plans with the storage settings the run does not use yet
 * (bfloat16 moments, float16 gradients): what a refused run could change first without touching its
 * data, lengths or fixed settings. Undefined when it uses them all already.
 */
function compactStorageEstimate(
  cfg: LlamaConfig,
  method: Exclude<TrainingMethod, 'rm'>,
  hp: Hyperparameters,
  plans: readonly MemoryPlan[],
): { settings: string; bytes: number } | undefined {
  const changes: Partial<Hyperparameters> = {}
  if (hp.optimizer_state_dtype !== 'bfloat16') changes.optimizer_state_dtype = 'bfloat16'
  if (hp.gradient_dtype !== 'float16') changes.gradient_dtype = 'float16'
  const settings = Object.entries(changes).map(([k, v]) => `${k}: ${v}`)
  if (settings.length === 0) return undefined
  const bytes = Math.min(
    ...plans.map(
      (p) => estimateRunMemory(cfg, method, { ...hp, ...changes }, p.microBatchSize, p.checkpoint).bytes,
    ),
  )
  return { settings: settings.join(' and '), bytes }
}
