/**
 * Pair generation for one online iteration: choose principles per query, then sample y+ | x+, y- | x-
 * and y0 | x from the current policy in batches, polling control between batches.
 */
import { type Sampling, toSamplingOptions } from './hyperparameters.ts'
import type { ChatPrompt, TextGenerator } from './policy-port.ts'
import {
  parseSelection,
  type SelectionOptions,
  selectionPrompt,
  selectPrinciples,
  systemPrompt,
  withConcision,
} from './principles.ts'
import type { Query, SsoRecord } from './records.ts'
import type { Rng } from './rng.ts'
import type { ControlSignal, Principle, PrincipleSetSpec } from './trainer-interface.ts'
import { type WritingOptions, type WritingStats, writePrinciples } from './written-principles.ts'

export interface PlannedQuery {
  instruction: string
  principles: Principle[]
  p_system: string
  n_system: string
  /** The principle the policy wrote for this query (principle_source policy_written). */
  written?: Principle
}

/** Where a query's principles come from: the set (chosen per `selection`) or written by the policy. */
export interface PlanOptions {
  source: 'set' | 'policy_written'
  selection: SelectionOptions
  writing: WritingOptions
}

export interface PlanStats {
  /** Invalid feature names in the policy's selection answers (selection mode 'policy'). */
  invalidSelections: number
  /** Principle writing (source 'policy_written'). */
  writing?: WritingStats
}

export interface GenerationHooks {
  control(): ControlSignal
  progress(done: number, total: number): void
}

const plan = (instruction: string, principles: Principle[], written?: Principle): PlannedQuery => ({
  instruction,
  principles,
  p_system: systemPrompt(principles, 'good'),
  n_system: systemPrompt(principles, 'bad'),
  written,
})

/** A query's own features as a fixed selection. */
const ownFeatures = (selection: SelectionOptions, features: string[]): SelectionOptions => ({
  ...selection,
  mode: 'fixed',
  fixedFeatures: features,
})

/**
 * Principles for each query. A query's own `features` (if any) are used as a fixed selection. From the
 * set, mode 'policy' asks the policy greedily with a few-shot prompt and repairs invalid answers;
 * source 'policy_written' has the policy write them, and drops the queries it fails to write for.
 */
export async function planQueries(
  queries: readonly Query[],
  set: PrincipleSetSpec,
  options: PlanOptions,
  rng: Rng,
  policy: TextGenerator,
  batchSize: number,
): Promise<{ planned: PlannedQuery[]; stats: PlanStats }> {
  if (options.source === 'policy_written') return planWritten(queries, set, options, rng, policy, batchSize)
  const { selection } = options
  let invalidSelections = 0
  if (selection.mode !== 'policy') {
    const planned: PlannedQuery[] = []
    for (const q of queries) {
      const chosen = q.features ? ownFeatures(selection, q.features) : selection
      planned.push(plan(q.prompt, selectPrinciples(set, chosen, rng)))
    }
    return { planned, stats: { invalidSelections } }
  }
  // Only queries without their own features ask the policy.
  const byQuery: Principle[][] = queries.map((q) =>
    q.features ? selectPrinciples(set, ownFeatures(selection, q.features), rng) : [],
  )
  const open = queries.flatMap((q, i) => (q.features ? [] : [i]))
  for (let start = 0; start < open.length; start += batchSize) {
    const batch = open.slice(start, start + batchSize)
    const prompts: ChatPrompt[] = batch.map((i) =>
      selectionPrompt(set, queries[i].prompt, selection.featuresPerQuery),
    )
    const answers = await policy.generate(prompts, {
      maxNewTokens: 24,
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 0,
    })
    batch.forEach((q, j) => {
      const parsed = parseSelection(set, answers[j], selection, rng)
      invalidSelections += parsed.invalid
      byQuery[q] = parsed.principles
    })
  }
  const planned = queries.map((q, i) => plan(q.prompt, byQuery[i]))
  return { planned, stats: { invalidSelections } }
}

async function planWritten(
  queries: readonly Query[],
  set: PrincipleSetSpec,
  options: PlanOptions,
  rng: Rng,
  policy: TextGenerator,
  batchSize: number,
): Promise<{ planned: PlannedQuery[]; stats: PlanStats }> {
  const open = queries.flatMap((q, i) => (q.features ? [] : [i]))
  const prompts = open.map((i) => queries[i].prompt)
  const { principles, stats } = await writePrinciples(policy, prompts, options.writing, batchSize, rng)
  const written = new Map(open.map((q, j) => [q, principles[j]]))
  const planned: PlannedQuery[] = []
  for (const [i, q] of queries.entries()) {
    if (q.features) {
      planned.push(plan(q.prompt, selectPrinciples(set, ownFeatures(options.selection, q.features), rng)))
      continue
    }
    const principle = written.get(i)
    if (principle)
      planned.push(plan(q.prompt, withConcision(set, [principle], options.selection, rng), principle))
  }
  return { planned, stats: { invalidSelections: 0, writing: stats } }
}

export interface RoleSampling {
  chosen: Sampling
  rejected: Sampling
  raw: Sampling
  maxNewTokens: number
  /** Sample y0 greedily (SSO v2). */
  rawGreedy: boolean
}

/** The prompts of one query under its good (x+) and its bad (x-) principle. */
interface PrincipledPrompt {
  instruction: string
  p_system: string
  n_system: string
}

type Generated<T> = { records: T[]; stopped?: ControlSignal }

/**
 * Runs `answer` over `items` in batches of `batchSize`, polling control before each batch and
 * reporting progress after it; returns early with the signal that stopped it.
 */
async function inBatches<I, T>(
  items: readonly I[],
  batchSize: number,
  hooks: GenerationHooks,
  answer: (batch: readonly I[]) => Promise<T[]>,
): Promise<Generated<T>> {
  const records: T[] = []
  for (let start = 0; start < items.length; start += batchSize) {
    const signal = hooks.control()
    if (signal !== 'continue') return { records, stopped: signal }
    records.push(...(await answer(items.slice(start, start + batchSize))))
    hooks.progress(records.length, items.length)
  }
  return { records }
}

/** y+ | x+ and y- | x- for a batch, each sampled with a fresh seed drawn from `rng`, in that order. */
async function answerBothSides(
  generator: TextGenerator,
  batch: readonly PrincipledPrompt[],
  sampling: RoleSampling,
  rng: Rng,
): Promise<{ chosen: string[]; rejected: string[] }> {
  const chosen = await generator.generate(
    batch.map((q) => ({ system: q.p_system, user: q.instruction })),
    toSamplingOptions(sampling.chosen, sampling.maxNewTokens, rng.seed()),
  )
  const rejected = await generator.generate(
    batch.map((q) => ({ system: q.n_system, user: q.instruction })),
    toSamplingOptions(sampling.rejected, sampling.maxNewTokens, rng.seed()),
  )
  return { chosen, rejected }
}

/**
 * Samples the three responses of every planned query. Returns early with the control signal that
 * stopped it (`stopped`); the records generated so far are then discarded by the caller.
 */
export function generateTriples(
  policy: TextGenerator,
  planned: readonly PlannedQuery[],
  sampling: RoleSampling,
  batchSize: number,
  rng: Rng,
  hooks: GenerationHooks,
): Promise<Generated<SsoRecord>> {
  const raw: Sampling = sampling.rawGreedy ? { ...sampling.raw, temperature: 0 } : sampling.raw
  return inBatches(planned, batchSize, hooks, async (batch) => {
    const { chosen, rejected } = await answerBothSides(policy, batch, sampling, rng)
    const plain = await policy.generate(
      batch.map((q) => ({ user: q.instruction })),
      toSamplingOptions(raw, sampling.maxNewTokens, rng.seed()),
    )
    return batch.map((q, i) => ({
      instruction: q.instruction,
      system: '',
      p_system: q.p_system,
      n_system: q.n_system,
      chosen: chosen[i],
      rejected: rejected[i],
      raw: plain[i],
      principles: q.principles.map((p) => p.feature),
      ...(q.written && { written_principle: { good: q.written.good, bad: q.written.bad } }),
    }))
  })
}

/**
 * Regenerates y+ | x+ and y- | x- for existing records with another model (SSO v2's trained generator).
 */
export function regeneratePairs(
  generator: TextGenerator,
  records: readonly SsoRecord[],
  sampling: RoleSampling,
  batchSize: number,
  rng: Rng,
  hooks: GenerationHooks,
): Promise<Generated<SsoRecord>> {
  return inBatches(records, batchSize, hooks, async (batch) => {
    const { chosen, rejected } = await answerBothSides(generator, batch, sampling, rng)
    return batch.map((r, i) => ({ ...r, chosen: chosen[i], rejected: rejected[i] }))
  })
}
