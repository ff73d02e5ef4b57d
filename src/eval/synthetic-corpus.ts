/**
 * A synthetic SFT corpus in which the principle in the system message decides the behaviour (good text
 * -> good demonstration, bad text -> bad demonstration) while plain prompts behave in a mix. A policy
 * trained on it can steer itself with principles, which is what SSO needs to start from. Prompts come
 * from the families' training split only.
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
    const example = (good: boolean, system?: string): SftPair => {
      const prompt = f.makePrompt(rng, 'train')
      return { ...(system && { system }), prompt, response: f.demonstrate(prompt, good, rng) }
    }
    for (let i = 0; i < options.perFamily; i++) {
      rows.push(example(true, systemPrompt([f.principle], 'good')))
      rows.push(example(false, systemPrompt([f.principle], 'bad')))
      rows.push(example(rng.next() < options.plainGoodRate))
    }
  }
  return rng.shuffle(rows)
}
