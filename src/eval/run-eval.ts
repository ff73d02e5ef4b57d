/**
 * Held-out evaluation: generate for plain queries (no principle in the prompt) and report the checkers'
 * satisfaction rate, overall and per family, with the mean response length in characters.
 */

import { ValidationError } from '../errors.ts'
import type { SamplingOptions, TextGenerator } from '../sso/policy-port.ts'
import { Rng } from '../sso/rng.ts'
import { type Checker, type Split, type TaskFamily, words } from './task-family.ts'

export interface EvalItem {
  family: string
  prompt: string
}

export interface EvalReport {
  satisfaction: number
  byFamily: Record<string, number>
  meanLength: number
  /**
   * Fraction of responses that say a pair of words twice ("- pear\n- pear\n- pear"): degenerate text that a
   * checker of form alone can still reward, so a score should be read beside it.
   */
  repetition: number
  n: number
}

/** Whether a response repeats a word bigram. */
export function repeatsBigram(response: string): boolean {
  const w = words(response)
  const seen = new Set<string>()
  for (let i = 1; i < w.length; i++) {
    const bigram = `${w[i - 1]} ${w[i]}`
    if (seen.has(bigram)) return true
    seen.add(bigram)
  }
  return false
}

/**
 * `perFamily` prompts per family from one split's templates and vocabulary (evaluation splits share
 * nothing with training prompts); families without that split are skipped.
 */
export function makeEvalItems(
  families: readonly TaskFamily[],
  perFamily: number,
  seed: number,
  split: Split = 'test',
): EvalItem[] {
  const rng = Rng.fromSeed(seed)
  return families
    .filter((f) => f.pools[split] !== undefined)
    .flatMap((f) =>
      Array.from({ length: perFamily }, () => ({ family: f.name, prompt: f.makePrompt(rng, split) })),
    )
}

export async function evaluate(
  policy: TextGenerator,
  families: readonly Checker[],
  items: readonly EvalItem[],
  sampling: SamplingOptions,
  batchSize = 16,
): Promise<EvalReport> {
  const byName = new Map(families.map((f) => [f.name, f]))
  const sums: Record<string, { score: number; n: number }> = {}
  let total = 0
  let length = 0
  let repetitive = 0
  for (let start = 0; start < items.length; start += batchSize) {
    const batch = items.slice(start, start + batchSize)
    const outputs = await policy.generate(
      batch.map((it) => ({ user: it.prompt })),
      { ...sampling, seed: sampling.seed + start },
    )
    batch.forEach((it, i) => {
      const family = byName.get(it.family)
      if (!family) throw new ValidationError(`no task family named '${it.family}'`, { family: it.family })
      const score = family.check(it.prompt, outputs[i])
      sums[it.family] ??= { score: 0, n: 0 }
      sums[it.family].score += score
      sums[it.family].n++
      total += score
      length += outputs[i].length
      if (repeatsBigram(outputs[i])) repetitive++
    })
  }
  const byFamily = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v.score / v.n]))
  return {
    satisfaction: total / items.length,
    byFamily,
    meanLength: length / items.length,
    repetition: repetitive / items.length,
    n: items.length,
  }
}

/**
 * One model's evaluations under several sampling seeds, averaged: satisfaction, each family and length
 * are means over the reports; `n` counts every sample scored.
 */
export function meanReport(reports: readonly EvalReport[]): EvalReport {
  if (reports.length === 0) throw new RangeError('no evaluation reports to average')
  const mean = (value: (r: EvalReport) => number) =>
    reports.reduce((a, r) => a + value(r), 0) / reports.length
  return {
    satisfaction: mean((r) => r.satisfaction),
    byFamily: Object.fromEntries(
      Object.keys(reports[0].byFamily).map((f) => [f, mean((r) => r.byFamily[f])]),
    ),
    meanLength: mean((r) => r.meanLength),
    repetition: mean((r) => r.repetition),
    n: reports.reduce((a, r) => a + r.n, 0),
  }
}
