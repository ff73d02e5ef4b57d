/** The registry of checkable task families; the single list that evaluation, corpora and benches use. */
import type { Principle, PrincipleSetSpec } from '../sso/trainer-interface.ts'
import type { TaskFamily } from './task-family.ts'
import { arithmetic } from './tasks/arithmetic.ts'
import { concision } from './tasks/concision.ts'
import { followup } from './tasks/followup.ts'
import { format } from './tasks/format.ts'
import { politeness } from './tasks/politeness.ts'
import { refusal } from './tasks/refusal.ts'

/** Families with training prompts: queries and SFT corpora are drawn from these. */
export const TASK_FAMILIES = { arithmetic, concision, format, politeness, refusal } as const
export type TaskFamilyName = keyof typeof TASK_FAMILIES

/** Families with evaluation prompts only: their principles appear in no training data. */
export const HELD_OUT_FAMILIES = { followup } as const

export const ALL_FAMILIES: readonly TaskFamily[] = [
  ...Object.values(TASK_FAMILIES),
  ...Object.values(HELD_OUT_FAMILIES),
]

/**
 * Principles no checker rewards: a benchmark's principle set carries them so that choosing principles
 * is a real choice, not a lookup of the one principle a family's checker measures.
 */
export const DISTRACTOR_PRINCIPLES: readonly Principle[] = [
  {
    feature: 'humour',
    good: 'Add a light joke to the answer.',
    bad: 'Keep the answer completely humourless.',
  },
  {
    feature: 'history',
    good: 'Mention a historical fact related to the request.',
    bad: 'Never mention anything about the past.',
  },
  {
    feature: 'formality',
    good: 'Use formal, old-fashioned wording.',
    bad: 'Use slang and casual wording.',
  },
]

/** The family a prompt belongs to, if any. */
export function familyOf(prompt: string, families: readonly TaskFamily[] = ALL_FAMILIES) {
  return families.find((f) => f.owns(prompt))
}

/** A principle set made of the families' own principle pairs, plus any distractors. */
export function familyPrincipleSet(
  families: readonly TaskFamily[],
  distractors: readonly Principle[] = [],
): PrincipleSetSpec {
  return { name: 'checkable', principles: [...families.map((f) => f.principle), ...distractors] }
}
