/**
 * Trainer hyperparameters: one TypeBox schema with defaults and bounds. The service imports it for the
 * run request and its docs; the trainer calls `resolveHyperparameters` on `job.hyperparameters`.
 * Defaults follow the reference scripts of the method (IPO, beta 0.2, thetaG 0.1, alpha 0.66, AdamW
 * betas 0.9/0.95, weight decay 0.1, cosine with 10% warm-up, one epoch per iteration, 3 iterations);
 * the few whose default depends on the method are left unset by the schema (see `methodDefaults`).
 */
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { ValidationError } from '../errors.ts'
import { BASE_LOSS_TYPES, COMBINATIONS } from './loss-types.ts'
import type { SamplingOptions } from './policy-port.ts'
import type { TrainingMethod } from './trainer-interface.ts'

const Probability = (def: number) => Type.Number({ minimum: 0, maximum: 1, default: def })

export const SamplingSchema = Type.Object(
  {
    temperature: Type.Number({ minimum: 0, maximum: 5, default: 0.7, description: '0 = greedy' }),
    top_p: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.8 }),
    top_k: Type.Integer({ minimum: 0, default: 0, description: '0 = off' }),
  },
  { default: {} },
)
export type Sampling = Static<typeof SamplingSchema>

/** A role's sampling settings as the policy takes them. */
export const toSamplingOptions = (s: Sampling, maxNewTokens: number, seed: number): SamplingOptions => ({
  maxNewTokens,
  temperature: s.temperature,
  topP: s.top_p,
  topK: s.top_k,
  seed,
})

export const LoraSchema = Type.Object(
  {
    rank: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
    alpha: Type.Number({ exclusiveMinimum: 0, default: 16 }),
    targets: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      default: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    }),
  },
  { default: {} },
)
export type Lora = Static<typeof LoraSchema>

export const HyperparametersSchema = Type.Object({
  // base loss and SSO terms
  loss_type: Type.Optional(
    Type.Enum(BASE_LOSS_TYPES, { description: "the policy's base loss; default ipo, dpo for sso_v2" }),
  ),
  beta: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, maximum: 100, description: 'default 0.2, 0.1 for sso_v2' }),
  ),
  theta_g: Type.Number({ minimum: 0, maximum: 100, default: 0.1 }),
  alpha: Probability(0.66),
  use_w: Type.Boolean({ default: true }),
  use_g: Type.Boolean({ default: true }),
  combination: Type.Enum(COMBINATIONS, { default: 'paper' }),
  sft_gamma: Type.Number({ minimum: 0, maximum: 100, default: 0 }),
  // SSO v2 generator
  generator_loss_type: Type.Enum(BASE_LOSS_TYPES, { default: 'dpo' }),
  generator_beta: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 0.1 }),
  generator_sft_gamma: Type.Number({ minimum: 0, maximum: 100, default: 0.1 }),
  // optimiser and schedule
  lr: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 5e-7 }),
  adam_betas: Type.Tuple(
    [Type.Number({ minimum: 0, exclusiveMaximum: 1 }), Type.Number({ minimum: 0, exclusiveMaximum: 1 })],
    {
      default: [0.9, 0.95],
    },
  ),
  adam_eps: Type.Number({ exclusiveMinimum: 0, default: 1e-8 }),
  weight_decay: Type.Number({ minimum: 0, maximum: 10, default: 0.1 }),
  schedule: Type.Union([Type.Literal('constant'), Type.Literal('linear'), Type.Literal('cosine')], {
    default: 'cosine',
  }),
  warmup_ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.1 }),
  max_grad_norm: Type.Number({ minimum: 0, default: 1, description: '0 = no clipping' }),
  keep_optimizer_state: Type.Boolean({
    default: false,
    description:
      'full fine-tuning: keep the AdamW moments across iterations (by default each iteration starts a fresh optimizer, as the reference does and as LoRA always does)',
  }),
  // data volume
  iterations: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  epochs: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
  batch_size: Type.Integer({ minimum: 1, maximum: 4096, default: 4 }),
  grad_accum: Type.Integer({ minimum: 1, maximum: 1024, default: 1 }),
  // memory
  micro_batch_size: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 4096 })], {
    default: 'auto',
    description:
      "examples per forward/backward pass: each batch_size group is split into equal micro-batches of at most this size (the largest divisor of the group not above it) whose gradients are accumulated, so the update is the same; auto: the largest that fits the worker memory budget, and for a step whose activations are most of the run's memory (small models, long sequences) the largest whose pass stays under 1 GiB of activations",
  }),
  gradient_checkpointing: Type.Union([Type.Literal('auto'), Type.Boolean()], {
    default: 'auto',
    description:
      "recompute each decoder layer in the backward pass instead of keeping its activations; auto: only when the run would not fit the worker memory budget without it, or, for models of up to 128 MB of weights, when the step's activations are most of the run's memory and even a micro-batch of one would pass 1 GiB of them",
  }),
  optimizer_state_dtype: Type.Union([Type.Literal('float32'), Type.Literal('bfloat16')], {
    default: 'float32',
    description:
      "storage of AdamW's two moments: bfloat16 saves 4 bytes per trained parameter (stochastic rounding)",
  }),
  gradient_dtype: Type.Union([Type.Literal('float32'), Type.Literal('float16')], {
    default: 'float32',
    description:
      "storage of the gradients the CPU optimizer reads, which all exist at once at the end of a backward pass, twice (onnxruntime's output and the optimizer's copy): float16, each tensor scaled so its largest element sits at 2^15, saves 4 bytes per trained parameter for a relative rounding of at most 2^-11 per element; on webgpu the gradients stay on the device and this does not apply",
  }),
  weights_dtype: Type.Union([Type.Literal('float32'), Type.Literal('bfloat16'), Type.Literal('float16')], {
    default: 'float32',
    description:
      "storage of LoRA's frozen base model: bfloat16 or float16 keep 2 bytes per parameter instead of 4, rounded once at load and upcast to float32 inside each graph; trained weights stay float32 (full fine-tuning holds no frozen copy)",
  }),
  precision: Type.Union([Type.Literal('float32'), Type.Literal('float16')], {
    default: 'float32',
    description:
      'float16: the policy scores and trains in mixed precision on the webgpu device (float16 copies of the weights, float16 activations; float32 master weights, AdamW moments, log-softmax and loss; dynamic loss scaling, a step whose gradients overflow is skipped). Needs device webgpu and an adapter with shader-f16; not for the rm method',
  }),
  queries_per_iteration: Type.Integer({
    minimum: 0,
    default: 0,
    description:
      'queries each iteration samples from: 0 = all of them; n = the next n of one shuffle of the dataset (fixed by the seed), so iterations see new queries until the dataset runs out, then wrap around',
  }),
  max_prompt_tokens: Type.Integer({ minimum: 1, default: 512 }),
  // generation
  max_new_tokens: Type.Integer({ minimum: 1, maximum: 32768, default: 256 }),
  generation_batch_size: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  sampling: Type.Object(
    { chosen: SamplingSchema, rejected: SamplingSchema, raw: SamplingSchema },
    { default: {} },
  ),
  y0_greedy: Type.Optional(
    Type.Boolean({ description: 'take y0 greedily; default false (v1 samples it), true for sso_v2' }),
  ),
  filter: Type.Boolean({ default: false, description: 'the optional log-prob filter' }),
  // principles
  principle_source: Type.Union([Type.Literal('set'), Type.Literal('policy_written')], {
    default: 'set',
    description:
      'set: features of the principle set, chosen by principle_selection; policy_written: the policy writes a good and a bad principle for each query (queries with their own features keep them)',
  }),
  principle_write_attempts: Type.Integer({
    minimum: 1,
    maximum: 10,
    default: 3,
    description: 'policy_written: tries per query before a query whose answers are all malformed is dropped',
  }),
  principle_selection: Type.Union([Type.Literal('random'), Type.Literal('fixed'), Type.Literal('policy')], {
    default: 'policy',
    description: 'how features of the set are chosen per query; policy: the policy picks them (the method)',
  }),
  features_per_query: Type.Integer({ minimum: 1, maximum: 32, default: 2 }),
  fixed_features: Type.Array(Type.String(), { default: [] }),
  concision_probability: Probability(0.2),
  // parameters trained
  finetuning: Type.Union([Type.Literal('full'), Type.Literal('lora')], { default: 'full' }),
  lora: LoraSchema,
  // reward model
  eval_fraction: Type.Number({ minimum: 0, maximum: 0.9, default: 0.1 }),
  // bookkeeping
  checkpoint_every: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'steps; 0 = only at iteration ends',
  }),
  log_every: Type.Integer({ minimum: 1, default: 1 }),
  deterministic: Type.Boolean({
    default: false,
    description:
      'one thread per op, so multi-threaded reductions do not change the summation order between runs',
  }),
})
/** Validated settings as a run stores them: the method-dependent ones only where the user set them. */
export type HyperparameterSettings = Static<typeof HyperparametersSchema>

type MethodDependent = 'loss_type' | 'beta' | 'y0_greedy'
/** What the trainer runs with: every hyperparameter set. */
export type Hyperparameters = HyperparameterSettings & Required<Pick<HyperparameterSettings, MethodDependent>>

/**
 * Defaults that depend on the method. SSO v1 and PBAA follow the v1 reference scripts (IPO, beta 0.2,
 * y0 sampled like y+ and y-); SSO v2 trains its policy with plain DPO (beta 0.1) and takes y0 greedily.
 */
export function methodDefaults(
  method: TrainingMethod,
): Required<Pick<HyperparameterSettings, MethodDependent>> {
  return method === 'sso_v2'
    ? { loss_type: 'dpo', beta: 0.1, y0_greedy: true }
    : { loss_type: 'ipo', beta: 0.2, y0_greedy: false }
}

/** Settings that depend on the run's method and device: throws `validation_failed` naming the conflict. */
export function checkRunSettings(hp: HyperparameterSettings, method: TrainingMethod, device: string): void {
  if (hp.precision !== 'float16') return
  if (device !== 'webgpu') {
    throw new ValidationError(
      `precision float16 needs device webgpu (got ${device}): only the WebGPU provider runs the float16 graphs`,
      { precision: hp.precision, device },
    )
  }
  if (method === 'rm') {
    throw new ValidationError(
      'precision float16 applies to policy training; the rm method trains in float32',
      {
        precision: hp.precision,
        method,
      },
    )
  }
}

/** Parses a run's settings and fills the method's defaults for what they leave unset. */
export function resolveHyperparameters(
  method: TrainingMethod,
  input: Record<string, unknown>,
): Hyperparameters {
  const hp = parseHyperparameters(input)
  const defaults = methodDefaults(method)
  return {
    ...hp,
    loss_type: hp.loss_type ?? defaults.loss_type,
    beta: hp.beta ?? defaults.beta,
    y0_greedy: hp.y0_greedy ?? defaults.y0_greedy,
  }
}

/** The run's hyperparameters with the method's defaults, and the settings a method fixes. */
export function effectiveHyperparameters(
  method: TrainingMethod,
  raw: Record<string, unknown>,
): Hyperparameters {
  const hp = resolveHyperparameters(method, raw)
  if (method === 'pbaa') return { ...hp, use_w: false, use_g: false }
  if (method === 'dpo' || method === 'ipo') return { ...hp, loss_type: method }
  return hp
}

/**
 * Fills defaults (nested ones included) and validates; throws `validation_failed` listing every problem,
 * including the cross-field rules a schema cannot state.
 */
export function parseHyperparameters(input: Record<string, unknown>): HyperparameterSettings {
  const withDefaults = Value.Default(HyperparametersSchema, structuredClone(input)) as Record<string, unknown>
  const problems = Value.Errors(HyperparametersSchema, withDefaults).map(
    (e) => `${e.instancePath || '/'} ${e.message}`,
  )
  const unknown = Object.keys(input).filter((k) => !(k in HyperparametersSchema.properties))
  for (const k of unknown) problems.push(`/${k} is not a known hyperparameter`)
  if (problems.length === 0) {
    const hp = withDefaults as HyperparameterSettings
    if (hp.principle_selection === 'fixed' && hp.fixed_features.length === 0) {
      problems.push('/fixed_features must name at least one feature when principle_selection is fixed')
    }
  }
  if (problems.length > 0) {
    throw new ValidationError(`invalid hyperparameters: ${problems.join('; ')}`, { problems })
  }
  return withDefaults as HyperparameterSettings
}
