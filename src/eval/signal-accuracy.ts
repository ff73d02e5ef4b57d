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

export function signalAccuracy(
  pairs: readonly ScoredPairInput[],
  families?: readonly TaskFamily[],
): { accuracy: number; checked: number } {
  let correct = 0
  let checked = 0
  for (const p of pairs) {
    const family = familyOf(p.prompt, families)
    if (!family) continue
    checked++
    if (family.check(p.prompt, p.chosen) > family.check(p.prompt, p.rejected)) correct++
  }
  return { accuracy: checked === 0 ? Number.NaN : correct / checked, checked }
}
