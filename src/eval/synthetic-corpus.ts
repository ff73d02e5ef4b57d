/**
 * A synthetic SFT corpus in which the principle in the system message decides the behaviour (good text
 * -> good demonstration, bad text -> bad demonstration) while plain prompts behave in a mix. A policy
 * trained on it can steer itself with principles, which is what SSO needs to start from. Prompts come
 * from the families' training split only.
 */

import { systemPrompt } from '../sso/principles.ts'
import type { SftPair } from '../sso/records.ts'
import { Rng } from '../sso/rng.ts'
import type { Principle } from '../sso/trainer-interface.ts'
import type { TaskFamily } from './task-family.ts'

export interface CorpusOptions {
  /** Examples per family and per kind (good-principle, bad-principle, plain). */
  perFamily: number
  /** Probability that a plain prompt gets the good demonstration. */
  plainGoodRate: number
  seed: number
  /**
   * Other principles a system message lists beside the family's own, as a run's selection does
   * (`features_per_query` lines): `perMessage` lines in all, the family's at a random place. The
   * demonstration still follows the family's principle alone, since no other changes what its checker
   * measures. Without it a system message holds the family's principle only.
   */
  companions?: { principles: readonly Principle[]; perMessage: number }
}

export function syntheticSftCorpus(families: readonly TaskFamily[], options: CorpusOptions): SftPair[] {
  const rng = Rng.fromSeed(options.seed)
  const rows: SftPair[] = []
  const principlesFor = (f: TaskFamily): Principle[] => {
    const c = options.companions
    if (!c) return [f.principle]
    const others = rng.sample(
      c.principles.filter((p) => p.feature !== f.principle.feature),
      c.perMessage - 1,
    )
    others.splice(rng.int(others.length + 1), 0, f.principle)
    return others
  }
  for (const f of families) {
    const example = (good: boolean, system?: string): SftPair => {
      const prompt = f.makePrompt(rng, 'train')
      return { ...(system && { system }), prompt, response: f.demonstrate(prompt, good, rng) }
    }
    for (let i = 0; i < options.perFamily; i++) {
      rows.push(example(true, systemPrompt(principlesFor(f), 'good')))
      rows.push(example(false, systemPrompt(principlesFor(f), 'bad')))
      rows.push(example(rng.next() < options.plainGoodRate))
    }
  }
  return rng.shuffle(rows)
}
