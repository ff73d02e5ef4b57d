/**
 * Online methods, one iteration at a time: `sso` and `pbaa` (SSO v1 loss; PBAA = no W, no G) and
 * `sso_v2` (train a generator with L+ + L-, regenerate pairs with it, DPO the policy). Reference = the
 * policy at the start of the iteration. Every stage can be resumed from a checkpoint.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { signalAccuracy } from '../eval/signal-accuracy.ts'
import type { TrainerState } from './checkpoint.ts'
import { cleanTriples } from './cleaning.ts'
import { filterByLogprobs } from './filter.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import { OBJECTIVE_ROLES, objectiveRoles, ROLES, type Role } from './loss-types.ts'
import { generateTriples, type PlanStats, planQueries, type RoleSampling, regeneratePairs } from './pairs.ts'
import type { GenerationTransfers, TrainablePolicy } from './policy-port.ts'
import { DEFAULT_PRINCIPLE_SET, validatePrincipleSet } from './principles.ts'
import { type Query, type SsoRecord, writeJsonl } from './records.ts'
import { Rng, type RngState } from './rng.ts'
import type { RunContext } from './run-context.ts'
import { scoreReference, ssoRows } from './scoring.ts'
import type { ControlSignal } from './trainer-interface.ts'
import { type Example, makePhase, type PhaseData, runPhase } from './training-phase.ts'

/** Where a resumed run picks up. */
export interface ResumePoint {
  state: TrainerState
  phaseData?: PhaseData
}

const roleSampling = (hp: Hyperparameters): RoleSampling => ({
  ...hp.sampling,
  maxNewTokens: hp.max_new_tokens,
  rawGreedy: hp.y0_greedy,
})

const meanLength = (xs: string[]): number => xs.reduce((a, s) => a + s.length, 0) / Math.max(1, xs.length)

const QUERY_ORDER_SALT = 0x5eed_0a0e

/**
 * Iteration k's queries: all of them, or the k-th run of `queries_per_iteration` through one shuffle
 * of the pool (fixed by the job's seed), so that iterations see new queries until the pool runs out,
 * as the method's iterations each take their own slice of the prompts. Depends on k alone: a resumed
 * run picks the same queries.
 */
export function iterationQueries(queries: readonly Query[], n: number, seed: number, k: number): Query[] {
  if (n <= 0 || n >= queries.length) return [...queries]
  // a stream of its own, so that the order is not correlated with the run's other draws
  const order = Rng.fromSeed(seed ^ QUERY_ORDER_SALT).shuffle(queries)
  return Array.from({ length: n }, (_, i) => order[((k - 1) * n + i) % order.length])
}

/** Plans and samples the iteration's triples, then cleans them; `stopped` holds the signal that stopped it. */
type Sampled =
  | { stopped: ControlSignal }
  | {
      stopped?: undefined
      records: SsoRecord[]
      stats: SamplingStats
    }

interface SamplingStats {
  generated: number
  dropped_identical: number
  plan: PlanStats
  /** Bytes generation moved per generated token (accelerators that report it). */
  transferPerToken?: { hostToDevice: number; deviceToHost: number }
}

/** Bytes per generated token between two readings of a policy's generation transfers. */
function perToken(
  before: GenerationTransfers | undefined,
  after: GenerationTransfers | undefined,
): SamplingStats['transferPerToken'] {
  if (!before || !after || after.tokens === before.tokens) return undefined
  const tokens = after.tokens - before.tokens
  return {
    hostToDevice: (after.hostToDevice - before.hostToDevice) / tokens,
    deviceToHost: (after.deviceToHost - before.deviceToHost) / tokens,
  }
}

async function sampleRecords(ctx: RunContext, k: number, queries: readonly Query[]): Promise<Sampled> {
  const hp = ctx.hp
  const set = validatePrincipleSet(ctx.job.principleSet ?? DEFAULT_PRINCIPLE_SET)
  ctx.phase('generating', 'sampling y+, y- and y0')
  const { planned, stats: plan } = await planQueries(
    iterationQueries(queries, hp.queries_per_iteration, ctx.job.seed, k),
    set,
    {
      source: hp.principle_source,
      selection: {
        mode: hp.principle_selection,
        featuresPerQuery: hp.features_per_query,
        fixedFeatures: hp.fixed_features,
        concisionProbability: hp.concision_probability,
      },
      writing: {
        attempts: hp.principle_write_attempts,
        sampling: hp.sampling.chosen,
      },
    },
    ctx.rng,
    ctx.policy,
    hp.generation_batch_size,
  )
  const transfersBefore = ctx.policy.generationTransfers?.()
  const generated = await generateTriples(
    ctx.policy,
    planned,
    roleSampling(hp),
    hp.generation_batch_size,
    ctx.rng,
    { control: () => ctx.callbacks.control(), progress: (d, t) => ctx.progress('generating', d, t) },
  )
  if (generated.stopped) return { stopped: generated.stopped }
  const { kept, dropped } = cleanTriples(generated.records)
  const transferPerToken =
    ctx.policy.device === 'cpu' ? undefined : perToken(transfersBefore, ctx.policy.generationTransfers?.())
  return {
    records: kept,
    stats: { generated: generated.records.length, dropped_identical: dropped, plan, transferPerToken },
  }
}

/** Per-iteration metrics of sampling: triples generated and dropped, principles chosen or written. */
function samplingMetrics(stats: SamplingStats): Record<string, number> {
  const sampled: Record<string, number> = {
    'iteration/generated': stats.generated,
    'iteration/dropped_identical': stats.dropped_identical,
  }
  if (stats.transferPerToken) {
    sampled['transfer/generated_token_host_to_device_bytes'] = stats.transferPerToken.hostToDevice
    sampled['transfer/generated_token_device_to_host_bytes'] = stats.transferPerToken.deviceToHost
  }
  const { invalidSelections, writing } = stats.plan
  if (!writing) return { ...sampled, 'iteration/invalid_selections': invalidSelections }
  return {
    ...sampled,
    'principles/written': writing.written,
    'principles/malformed': writing.malformed,
    'principles/dropped': writing.dropped,
  }
}

/** Per-iteration metrics of a set of records: lengths and, where a checker exists, signal accuracy. */
function recordMetrics(records: readonly SsoRecord[]): Record<string, number> {
  const values: Record<string, number> = {
    'lengths/chosen_chars': meanLength(records.map((r) => r.chosen)),
    'lengths/rejected_chars': meanLength(records.map((r) => r.rejected)),
    'lengths/raw_chars': meanLength(records.map((r) => r.raw)),
  }
  const signal = signalAccuracy(
    records.map((r) => ({ prompt: r.instruction, chosen: r.chosen, rejected: r.rejected })),
  )
  if (signal.checked > 0) {
    values.signal_accuracy = signal.accuracy
    values.signal_reversed = signal.reversed
    values.signal_checked = signal.checked
  }
  return values
}

async function saveRecords(ctx: RunContext, iteration: number, records: SsoRecord[]): Promise<void> {
  const dir = join(ctx.job.outputDir, 'samples')
  await mkdir(dir, { recursive: true })
  await writeJsonl(join(dir, `iteration-${iteration}.jsonl`), records)
  ctx.callbacks.onSamples?.(iteration, records)
}

/**
 * Makes the model as it is now the iteration's reference; the optimizer restarts with it (as a new
 * trainer per iteration does in the reference) unless `keep_optimizer_state`.
 */
async function startReference(ctx: RunContext, model: TrainablePolicy): Promise<void> {
  await model.freezeReference()
  if (!ctx.hp.keep_optimizer_state) await model.resetOptimizer()
}

/**
 * Reference scores for the policy phase: the roles the step reads (SSO v1 without G: the plain pair
 * only), all seven when the log-prob filter runs (it reads six, the step the seventh).
 */
async function scoredPolicyPhase(
  ctx: RunContext,
  iteration: number,
  records: SsoRecord[],
  objective: 'sso' | 'preference',
) {
  const hp = ctx.hp
  ctx.phase('scoring', 'reference log-probs')
  await startReference(ctx, ctx.policy)
  let examples: Example[] = records.map((r) => ({ rows: ssoRows(r), ref: {} }))
  const filtering = hp.filter && objective === 'sso'
  const roles = filtering ? ROLES : objectiveRoles(objective, hp).refRoles
  await scoreReference(ctx.policy, examples, roles, hp.generation_batch_size, (d, t) =>
    ctx.progress('scoring', d, t),
  )
  const metrics: Record<string, number> = {}
  if (filtering) {
    const mean = (e: Example, r: Role) => e.ref[r]!.mean
    const { keep, stats } = filterByLogprobs(
      examples.map((e) => ({
        chosen: { o: mean(e, 'plain_chosen'), p: mean(e, 'good_chosen'), n: mean(e, 'bad_chosen') },
        rejected: { o: mean(e, 'plain_rejected'), p: mean(e, 'good_rejected'), n: mean(e, 'bad_rejected') },
      })),
    )
    examples = keep.map((i) => examples[i])
    records = keep.map((i) => records[i])
    metrics['filter/total'] = stats.total
    metrics['filter/dropped_order'] = stats.droppedOrder
    metrics['filter/dropped_off_policy'] = stats.droppedOffPolicy
    metrics['filter/dropped_weak_gap'] = stats.droppedWeakGap
    metrics['filter/kept'] = stats.kept
  }
  return { data: makePhase('policy', iteration, objective, examples, hp, ctx.rng, records), metrics }
}

/** Runs a phase on a model; on a stop signal checkpoints the position and returns the signal. */
async function trainPhase(
  ctx: RunContext,
  data: PhaseData,
  stepsDone: number,
  model = ctx.policy,
): Promise<ControlSignal> {
  ctx.phase('training', `training ${data.name} (iteration ${data.iteration})`, {
    examples: data.examples.length,
    iteration: data.iteration,
  })
  if (data.examples.length === 0) {
    ctx.callbacks.onEvent({
      type: 'warning',
      message: `iteration ${data.iteration}: no examples left for ${data.name} after cleaning and filtering`,
    })
  }
  let done = stepsDone
  const hooks = ctx.phaseHooks(data)
  const signal = await runPhase(model, data, ctx.hp, stepsDone, {
    control: hooks.control,
    afterStep: async (s, v) => {
      done = s
      await hooks.afterStep(s, v)
    },
  })
  if (signal !== 'continue')
    await ctx.checkpoint(data.iteration, 'train', ctx.rng.state(), { data, stepsDone: done })
  return signal
}

/**
 * One SSO v1 / PBAA iteration. `resume` carries a phase in progress. Returns the stop signal, or
 * 'continue' after the iteration-end checkpoint.
 */
async function ssoIteration(
  ctx: RunContext,
  k: number,
  queries: Query[],
  resume?: ResumePoint,
): Promise<ControlSignal> {
  let data = resume?.state.stage === 'train' ? resume.phaseData : undefined
  let stepsDone = data ? (resume?.state.phase?.stepsDone ?? 0) : 0
  if (!data) {
    const startRng: RngState = ctx.rng.state()
    const sampled = await sampleRecords(ctx, k, queries)
    if (sampled.stopped) {
      await ctx.checkpoint(k, 'generate', startRng)
      return sampled.stopped
    }
    const scored = await scoredPolicyPhase(ctx, k, sampled.records, 'sso')
    data = scored.data
    stepsDone = 0
    await saveRecords(ctx, k, data.records ?? [])
    ctx.iterationMetrics(k, {
      ...samplingMetrics(sampled.stats),
      'iteration/examples': data.examples.length,
      ...scored.metrics,
      ...recordMetrics(data.records ?? []),
    })
  }
  return trainPhase(ctx, data, stepsDone)
}

/** One SSO v2 iteration: generator phase, regeneration, policy DPO phase. */
async function ssoV2Iteration(
  ctx: RunContext,
  k: number,
  queries: Query[],
  resume?: ResumePoint,
): Promise<ControlSignal> {
  const hp = ctx.hp
  let policyData = resume?.phaseData?.name === 'policy' ? resume.phaseData : undefined
  let stepsDone = resume?.state.phase?.stepsDone ?? 0
  if (!policyData) {
    let genData = resume?.phaseData?.name === 'generator' ? resume.phaseData : undefined
    const startRng: RngState = ctx.rng.state()
    if (!genData) {
      stepsDone = 0
      const sampled = await sampleRecords(ctx, k, queries)
      if (sampled.stopped) {
        await ctx.checkpoint(k, 'generate', startRng)
        return sampled.stopped
      }
      ctx.iterationMetrics(k, samplingMetrics(sampled.stats))
      ctx.generator = await ctx.policy.fork()
      await startReference(ctx, ctx.generator)
      ctx.phase('scoring', 'generator reference log-probs')
      const examples: Example[] = sampled.records.map((r) => ({ rows: ssoRows(r), ref: {} }))
      const { refRoles } = OBJECTIVE_ROLES.sso_generator
      await scoreReference(ctx.generator, examples, refRoles, hp.generation_batch_size)
      genData = makePhase('generator', k, 'sso_generator', examples, hp, ctx.rng, sampled.records)
    }
    const genSignal = await trainPhase(ctx, genData, stepsDone, ctx.generator)
    if (genSignal !== 'continue') return genSignal
    ctx.phase('generating', 'regenerating pairs with the trained generator')
    const regenerated = await regeneratePairs(
      ctx.generator!,
      genData.records ?? [],
      roleSampling(hp),
      hp.generation_batch_size,
      ctx.rng,
      { control: () => ctx.callbacks.control(), progress: (d, t) => ctx.progress('generating', d, t) },
    )
    await ctx.generator!.dispose()
    ctx.generator = undefined
    if (regenerated.stopped) {
      await ctx.checkpoint(k, 'generate', startRng)
      return regenerated.stopped
    }
    const { kept } = cleanTriples(regenerated.records)
    const scored = await scoredPolicyPhase(ctx, k, kept, 'preference')
    policyData = scored.data
    stepsDone = 0
    await saveRecords(ctx, k, kept)
    ctx.iterationMetrics(k, { 'iteration/examples': kept.length, ...recordMetrics(kept) })
  }
  return trainPhase(ctx, policyData, stepsDone)
}

/** Runs the online iterations from the start or from a resume point. */
export async function runOnline(
  ctx: RunContext,
  queries: Query[],
  resume?: ResumePoint,
): Promise<ControlSignal> {
  const iteration = ctx.job.method === 'sso_v2' ? ssoV2Iteration : ssoIteration
  const first = resume ? resume.state.iteration : 1
  for (let k = first; k <= ctx.hp.iterations; k++) {
    const signal = await iteration(ctx, k, queries, k === first ? resume : undefined)
    if (signal !== 'continue') return signal
    ctx.callbacks.onEvent({ type: 'iteration_end', message: `iteration ${k} done`, data: { iteration: k } })
    await ctx.checkpoint(k + 1, k === ctx.hp.iterations ? 'done' : 'generate', ctx.rng.state())
  }
  return 'continue'
}
