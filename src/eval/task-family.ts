/**
 * A task family: queries whose satisfaction of one principle a program can check. Checkers read only the
 * prompt and the response, so they also score records generated during training (for signal accuracy);
 * they are never used as training labels. Prompts come from per-split templates and vocabularies that
 * share nothing, so evaluation prompts (validation, test) are never training prompts.
 */

import { ValidationError } from '../errors.ts'
import type { Rng } from '../sso/rng.ts'
import type { Principle } from '../sso/trainer-interface.ts'

export const SPLITS = ['train', 'validation', 'test'] as const
export type Split = (typeof SPLITS)[number]
export type EvalSplit = Exclude<Split, 'train'>

/** Templates with `{}` slots, each filled with one entry of the vocabulary. */
export interface Pool {
  templates: readonly string[]
  vocab: readonly string[]
}
/** A held-out family has no 'train' pool: its principle appears in no training data. */
export type Pools = Partial<Record<Split, Pool>>

/** What evaluation needs of a family: a name and a checker (built-in and external families alike). */
export interface Checker {
  name: string
  /** Satisfaction of the family's good principle, in [0, 1]. */
  check(prompt: string, response: string): number
}

export interface TaskFamily extends Checker {
  /** The good/bad principle pair whose good side the checker measures. */
  principle: Principle
  pools: Pools
  /** A fresh query of this family from one split's templates and vocabulary. */
  makePrompt(rng: Rng, split?: Split): string
  /** True when the prompt belongs to this family (used to route records to their checker). */
  owns(prompt: string): boolean
  /** A synthetic response that follows the good (true) or the bad (false) principle; for SFT corpora. */
  demonstrate(prompt: string, good: boolean, rng: Rng): string
}

/** A family described by its pools and by checker and demonstrator over the prompt's slot values. */
export interface FamilySpec {
  name: string
  principle: Principle
  pools: Pools
  check(slots: string[], response: string): number
  demonstrate(slots: string[], good: boolean, rng: Rng): string
}

const SLOT = '{}'
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const templateRegex = (t: string) => new RegExp(`^${t.split(SLOT).map(escapeRegex).join('(.+?)')}$`)

/** The slot values of a prompt written from one of the pools' templates with that pool's vocabulary. */
export function matchTemplate(pools: Pools, prompt: string): { split: Split; slots: string[] } | undefined {
  for (const split of SPLITS) {
    const pool = pools[split]
    for (const t of pool?.templates ?? []) {
      const m = templateRegex(t).exec(prompt.trim())
      const slots = m?.slice(1) ?? []
      if (m && slots.every((s) => pool?.vocab.includes(s))) return { split, slots }
    }
  }
  return undefined
}

export function defineFamily(spec: FamilySpec): TaskFamily {
  const slotsOf = (prompt: string) => matchTemplate(spec.pools, prompt)?.slots
  return {
    name: spec.name,
    principle: spec.principle,
    pools: spec.pools,
    makePrompt(rng, split = 'train') {
      const pool = spec.pools[split]
      if (!pool) throw new ValidationError(`family '${spec.name}' has no '${split}' prompts`, { split })
      const [head, ...rest] = rng.pick(pool.templates).split(SLOT)
      return head + rest.map((part) => rng.pick(pool.vocab) + part).join('')
    },
    owns: (prompt) => slotsOf(prompt) !== undefined,
    check(prompt, response) {
      const slots = slotsOf(prompt)
      return slots ? spec.check(slots, response) : 0
    },
    demonstrate(prompt, good, rng) {
      const slots = slotsOf(prompt)
      if (!slots) throw new ValidationError(`'${prompt}' is not a ${spec.name} prompt`, { prompt })
      return spec.demonstrate(slots, good, rng)
    },
  }
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

/** The integers lo..hi as strings: a numeric vocabulary. */
export const numbers = (lo: number, hi: number) =>
  Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i))
