/**
 * A synthetic SFT corpus in which the principle in the system message decides the behaviour (good text
 * -> good demonstration, bad text -> bad demonstration) while plain prompts behave in a mix. A policy
 * trained on it can steer itself with principles, which is what SSO needs to start from.
 */

import { systemPrompt } from '../sso/principles.ts'
import type { SftPair } from '../sso/records.ts'
import { Rng } from '../sso/rng.ts'
import type { TaskFamily } from './task-family.ts'

export interface CorpusOptions {
  /** Examples per family and per kind (good-principle, bad-principle, plain). */
  perFamily: number
  /** Probability that a plain prompt gets the good demonstration. */
  plainGoodRate: number
  seed: number
}

export function syntheticSftCorpus(families: readonly TaskFamily[], options: CorpusOptions): SftPair[] {
  const rng = Rng.fromSeed(options.seed)
  const rows: SftPair[] = []
  for (const f of families) {
    for (let i = 0; i < options.perFamily; i++) {
      const good = f.makePrompt(rng)
      rows.push({
        system: systemPrompt([f.principle], 'good'),
        prompt: good,
        response: f.demonstrate(good, true, rng),
      })
      const bad = f.makePrompt(rng)
      rows.push({
        system: systemPrompt([f.principle], 'bad'),
        prompt: bad,
        response: f.demonstrate(bad, false, rng),
      })
      const plain = f.makePrompt(rng)
      rows.push({ prompt: plain, response: f.demonstrate(plain, rng.next() < options.plainGoodRate, rng) })
    }
  }
  return rng.shuffle(rows)
}
