/**
 * A task family: queries whose satisfaction of one principle a program can check. Checkers read only the
 * prompt and the response, so they also score records generated during training (for signal accuracy);
 * they are never used as training labels.
 */

import type { Rng } from '../sso/rng.ts'
import type { Principle } from '../sso/trainer-interface.ts'

export interface TaskFamily {
  name: string
  /** The good/bad principle pair whose good side the checker measures. */
  principle: Principle
  /** A fresh query of this family. */
  makePrompt(rng: Rng): string
  /** True when the prompt belongs to this family (used to route records to their checker). */
  owns(prompt: string): boolean
  /** Satisfaction of the good principle, in [0, 1]. */
  check(prompt: string, response: string): number
  /** A synthetic response that follows the good (true) or the bad (false) principle; for SFT corpora. */
  demonstrate(prompt: string, good: boolean, rng: Rng): string
}

/** Words of a text, lower-cased, punctuation stripped. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9']+/)
    .filter((w) => w !== '')
}

/** Integers appearing in a text, in order. */
export function integers(text: string): number[] {
  return [...text.matchAll(/-?\d+/g)].map((m) => Number(m[0]))
}
