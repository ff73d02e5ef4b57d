/** The registry of checkable task families; the single list that evaluation, corpora and benches use. */
import type { PrincipleSetSpec } from '../sso/trainer-interface.ts'
import type { TaskFamily } from './task-family.ts'
import { arithmetic } from './tasks/arithmetic.ts'
import { concision } from './tasks/concision.ts'
import { format } from './tasks/format.ts'
import { politeness } from './tasks/politeness.ts'
import { refusal } from './tasks/refusal.ts'

export const TASK_FAMILIES = { arithmetic, concision, format, politeness, refusal } as const
export type TaskFamilyName = keyof typeof TASK_FAMILIES

/** The family a prompt belongs to, if any. */
export function familyOf(prompt: string, families: readonly TaskFamily[] = Object.values(TASK_FAMILIES)) {
  return families.find((f) => f.owns(prompt))
}

/** A principle set made of the families' own principle pairs. */
export function familyPrincipleSet(families: readonly TaskFamily[]): PrincipleSetSpec {
  return { name: 'checkable', principles: families.map((f) => f.principle) }
}
