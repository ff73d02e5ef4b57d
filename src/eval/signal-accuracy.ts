/**
 * Signal accuracy: the fraction of preference pairs whose chosen response satisfies its family's checker
 * better than the rejected one. Pairs whose prompt no family owns are not counted.
 */
import { familyOf } from './families.ts'
import type { TaskFamily } from './task-family.ts'

export interface ScoredPairInput {
  prompt: string
  chosen: string
  rejected: string
}

/**
 * How a pair's two sides compare under its family's checker. Signal accuracy counts only `separating`;
 * the rest says why a pair is not signal: a `reversed` pair teaches the wrong way, a tied one nothing.
 */
export type PairOutcome = 'separating' | 'reversed' | 'both_satisfy' | 'neither_satisfies'

export type OutcomeCounts = Record<PairOutcome, number>

const noOutcomes = (): OutcomeCounts => ({
  separating: 0,
  reversed: 0,
  both_satisfy: 0,
  neither_satisfies: 0,
})

/**
 * Per family, how many of the items it owns fall in each class; items no family owns are skipped.
 * `empty` gives a family's zero counts, so every class appears in its record.
 */
function tallyByFamily<T extends { prompt: string }, K extends string>(
  items: readonly T[],
  families: readonly TaskFamily[] | undefined,
  empty: () => Record<K, number>,
  classify: (item: T, family: TaskFamily) => K,
): Record<string, Record<K, number>> {
  const byFamily: Record<string, Record<K, number>> = {}
  for (const item of items) {
    const family = familyOf(item.prompt, families)
    if (!family) continue
    byFamily[family.name] ??= empty()
    byFamily[family.name][classify(item, family)]++
  }
  return byFamily
}

/** Outcome counts per family, for the pairs some family owns. */
export function pairOutcomes(
  pairs: readonly ScoredPairInput[],
  families?: readonly TaskFamily[],
): Record<string, OutcomeCounts> {
  return tallyByFamily(pairs, families, noOutcomes, (p, family): PairOutcome => {
    const chosen = family.check(p.prompt, p.chosen)
    const rejected = family.check(p.prompt, p.rejected)
    if (chosen > rejected) return 'separating'
    if (chosen < rejected) return 'reversed'
    return chosen >= 0.5 ? 'both_satisfy' : 'neither_satisfies'
  })
}

/** Per family, how many pairs were written under its own principle and how many under others only. */
export type SelectionCounts = { own: number; other: number }

/**
 * Whether the principles a sample was written under include its family's own, per family: a pair
 * whose principles miss it can separate only by chance, so this tells a selection that went wrong
 * from a policy that no longer follows the principle it was given.
 */
export function ownPrincipleCounts(
  samples: readonly { prompt: string; principles: readonly string[] }[],
  families?: readonly TaskFamily[],
): Record<string, SelectionCounts> {
  return tallyByFamily(
    samples,
    families,
    () => ({ own: 0, other: 0 }),
    (s, family) => (s.principles.includes(family.principle.feature) ? 'own' : 'other'),
  )
}

/** Fractions of the checkable pairs that separate (signal accuracy) and that are reversed. */
export function signalAccuracy(
  pairs: readonly ScoredPairInput[],
  families?: readonly TaskFamily[],
): { accuracy: number; reversed: number; checked: number } {
  let correct = 0
  let reversed = 0
  let checked = 0
  for (const counts of Object.values(pairOutcomes(pairs, families))) {
    correct += counts.separating
    reversed += counts.reversed
    checked += counts.separating + counts.reversed + counts.both_satisfy + counts.neither_satisfies
  }
  const share = (n: number) => (checked === 0 ? Number.NaN : n / checked)
  return { accuracy: share(correct), reversed: share(reversed), checked }
}
