/**
 * The data of the alignment benchmark, built in one place so that the benchmark and the leakage test
 * read the same thing: the SFT corpus and training queries (training split of the trained families), the
 * validation and test items (their evaluation splits, plus the held-out families), and the principle set
 * the policy chooses from (the trained families' principles and distractors no checker rewards).
 */
import { resolveHyperparameters } from '../sso/hyperparameters.ts'
import { selectionPrompt } from '../sso/principles.ts'
import type { Query, SftPair } from '../sso/records.ts'
import { Rng } from '../sso/rng.ts'
import type { PrincipleSetSpec } from '../sso/trainer-interface.ts'
import { DISTRACTOR_PRINCIPLES, familyPrincipleSet, HELD_OUT_FAMILIES, TASK_FAMILIES } from './families.ts'
import { type EvalItem, makeEvalItems } from './run-eval.ts'
import { syntheticSftCorpus } from './synthetic-corpus.ts'
import type { EvalSplit, TaskFamily } from './task-family.ts'

// arithmetic and concision are left out: a model of this size does not learn sums and products in a
// short SFT, so they score 0 for every variant and only dilute the comparison
export const BENCH_TRAIN_FAMILIES: readonly TaskFamily[] = [
  TASK_FAMILIES.politeness,
  TASK_FAMILIES.format,
  TASK_FAMILIES.refusal,
]
export const BENCH_EVAL_FAMILIES: readonly TaskFamily[] = [
  ...BENCH_TRAIN_FAMILIES,
  ...Object.values(HELD_OUT_FAMILIES),
]

export interface BenchDataOptions {
  /** Training queries per iteration; each iteration gets its own. */
  queries: number
  iterations: number
  sftPerFamily: number
  evalPerFamily: number
}

export const BENCH_DATA_DEFAULTS: BenchDataOptions = {
  queries: 48,
  iterations: 3,
  sftPerFamily: 60,
  evalPerFamily: 20,
}

const SFT_SEED = 5
const EVAL_SEEDS: Record<EvalSplit, number> = { validation: 77_777, test: 99_999 }
const IN_DISTRIBUTION_SEED = 55_555

export const benchPrincipleSet = (): PrincipleSetSpec => ({
  ...familyPrincipleSet(BENCH_TRAIN_FAMILIES, DISTRACTOR_PRINCIPLES),
  name: 'benchmark',
})

/** Qualities the policy names per query: the runs' default `features_per_query`. */
const FEATURES_PER_QUERY = resolveHyperparameters('sso', {}).features_per_query

export const benchSftCorpus = (o: BenchDataOptions): SftPair[] => [
  ...syntheticSftCorpus(BENCH_TRAIN_FAMILIES, {
    perFamily: o.sftPerFamily,
    plainGoodRate: 0.3,
    seed: SFT_SEED,
    // a run's system messages list `features_per_query` principles; a model trained on one-line
    // messages only did not follow its family's line among others
    companions: { principles: benchPrincipleSet().principles, perMessage: FEATURES_PER_QUERY },
  }),
  ...selectionDemonstrations(o.sftPerFamily),
]

/**
 * Answers to the method's selection prompt on training requests: the request's own quality first, then
 * others of the set at random. A model this small never saw the prompt otherwise, names no quality, and
 * every selection falls back to random principles (distractors included): almost no pair then differs
 * in what a checker measures. The requests come from the training split, like the rest of the corpus.
 */
function selectionDemonstrations(perFamily: number): SftPair[] {
  const rng = Rng.fromSeed(SFT_SEED + 1)
  const set = benchPrincipleSet()
  const rows: SftPair[] = []
  for (const f of BENCH_TRAIN_FAMILIES) {
    const others = set.principles.filter((p) => p !== f.principle).map((p) => p.feature)
    for (let i = 0; i < perFamily; i++) {
      const { system, user } = selectionPrompt(set, f.makePrompt(rng, 'train'), FEATURES_PER_QUERY)
      const answer = [f.principle.feature, ...rng.sample(others, FEATURES_PER_QUERY - 1)]
      rows.push({ system, prompt: user, response: answer.join(', ') })
    }
  }
  return rows
}

/**
 * Plain training queries of one seed (no `features`: the policy picks the principles): `queries` for
 * each iteration, which a run takes in turn (`queries_per_iteration`), new ones every iteration.
 */
export function benchQueries(o: BenchDataOptions, seed: number): Query[] {
  const rng = Rng.fromSeed(1000 + seed)
  return Array.from({ length: o.queries * o.iterations }, (_, i) => ({
    prompt: BENCH_TRAIN_FAMILIES[i % BENCH_TRAIN_FAMILIES.length].makePrompt(rng, 'train'),
  }))
}

/** The same items for every variant and seed. */
export const benchEvalItems = (o: BenchDataOptions, split: EvalSplit): EvalItem[] =>
  makeEvalItems(BENCH_EVAL_FAMILIES, o.evalPerFamily, EVAL_SEEDS[split], split)

/**
 * Prompts from the training split's templates and vocabulary (trained families only; some are training
 * queries): not held out, a diagnostic only. Beside the test split's score it tells a method that does
 * not align from one whose alignment does not carry to new phrasings.
 */
export const benchInDistributionItems = (o: BenchDataOptions): EvalItem[] =>
  makeEvalItems(BENCH_TRAIN_FAMILIES, o.evalPerFamily, IN_DISTRIBUTION_SEED, 'train')

/** Every string a benchmark run trains on, for the leakage check. */
export function trainingTexts(sft: readonly SftPair[], queries: readonly Query[]): string[] {
  return [
    ...sft.flatMap((r) => [r.system ?? '', r.prompt, r.response]),
    ...queries.map((q) => q.prompt),
  ].filter((t) => t !== '')
}
