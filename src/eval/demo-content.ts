/**
 * The demo's data: queries drawn from the checkable task families and those families' principles,
 * so a demo run's samples get checker verdicts. Shared by the service's first start and `npm run demo`.
 */
import { toJsonl } from '../sso/records.ts'
import type { PrincipleSetSpec } from '../sso/trainer-interface.ts'
import { familyPrincipleSet, TASK_FAMILIES } from './families.ts'
import { makeEvalItems } from './run-eval.ts'

const families = Object.values(TASK_FAMILIES)

/**
 * `perFamily` training queries of every family, as a `queries` dataset's JSONL. Each brings its
 * family's principle as its feature: the demo model learnt to follow one principle that fits the
 * query, and a principle that does not fit makes it write noise.
 */
export function demoQueriesJsonl(perFamily: number, seed: number): string {
  const feature = new Map(families.map((f) => [f.name, f.principle.feature]))
  return toJsonl(
    makeEvalItems(families, perFamily, seed, 'train').map((it) => ({
      prompt: it.prompt,
      task: it.family,
      features: [feature.get(it.family)],
    })),
  )
}

export function demoPrincipleSet(): PrincipleSetSpec {
  return familyPrincipleSet(families)
}
