/**
 * Trainer hyperparameters: one TypeBox schema with defaults and bounds. The service imports it for the
 * run request and its docs; the trainer calls `parseHyperparameters` on `job.hyperparameters`.
 * Defaults follow the reference scripts of the method (IPO, beta 0.2, thetaG 0.1, alpha 0.66, AdamW
 * betas 0.9/0.95, weight decay 0.1, cosine with 10% warm-up, one epoch per iteration, 3 iterations).
 */
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { ValidationError } from '../errors.ts'
import { BASE_LOSS_TYPES, COMBINATIONS } from './loss-types.ts'

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
  loss_type: Type.Enum(BASE_LOSS_TYPES, { default: 'ipo' }),
  beta: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 0.2 }),
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
  // data volume
  iterations: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  epochs: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
  batch_size: Type.Integer({ minimum: 1, maximum: 4096, default: 4 }),
  grad_accum: Type.Integer({ minimum: 1, maximum: 1024, default: 1 }),
  queries_per_iteration: Type.Integer({ minimum: 0, default: 0, description: '0 = all queries' }),
  max_prompt_tokens: Type.Integer({ minimum: 1, default: 512 }),
  // generation
  max_new_tokens: Type.Integer({ minimum: 1, maximum: 32768, default: 256 }),
  generation_batch_size: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  sampling: Type.Object(
    { chosen: SamplingSchema, rejected: SamplingSchema, raw: SamplingSchema },
    { default: {} },
  ),
  y0_greedy: Type.Boolean({ default: false, description: 'sample y0 greedily (SSO v2 does)' }),
  filter: Type.Boolean({ default: false, description: 'the optional log-prob filter' }),
  // principles
  principle_selection: Type.Union([Type.Literal('random'), Type.Literal('fixed'), Type.Literal('policy')], {
    default: 'random',
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
export type Hyperparameters = Static<typeof HyperparametersSchema>

/**
 * Fills defaults (nested ones included) and validates; throws `validation_failed` listing every problem,
 * including the cross-field rules a schema cannot state.
 */
export function parseHyperparameters(input: Record<string, unknown>): Hyperparameters {
  const withDefaults = Value.Default(HyperparametersSchema, structuredClone(input)) as Record<string, unknown>
  const problems = Value.Errors(HyperparametersSchema, withDefaults).map(
    (e) => `${e.instancePath || '/'} ${e.message}`,
  )
  const unknown = Object.keys(input).filter((k) => !(k in HyperparametersSchema.properties))
  for (const k of unknown) problems.push(`/${k} is not a known hyperparameter`)
  if (problems.length === 0) {
    const hp = withDefaults as Hyperparameters
    if (hp.principle_selection === 'fixed' && hp.fixed_features.length === 0) {
      problems.push('/fixed_features must name at least one feature when principle_selection is fixed')
    }
  }
  if (problems.length > 0) {
    throw new ValidationError(`invalid hyperparameters: ${problems.join('; ')}`, { problems })
  }
  return withDefaults as Hyperparameters
}
