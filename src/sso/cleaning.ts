/** Cleaning of generated triples: a sample whose responses coincide carries no preference signal. */

export interface Triple {
  chosen: string
  rejected: string
  raw: string
}

/**
 * True when any two of y+, y-, y0 are identical after trimming, or one is empty (an empty response has
 * no tokens, so its mean log-prob is undefined).
 */
export function isDegenerate(t: Triple): boolean {
  const a = t.chosen.trim()
  const b = t.rejected.trim()
  const c = t.raw.trim()
  return a === '' || b === '' || c === '' || a === b || a === c || b === c
}

/** Keeps the samples that carry a signal; returns them with the count dropped. */
export function cleanTriples<T extends Triple>(samples: readonly T[]): { kept: T[]; dropped: number } {
  const kept = samples.filter((s) => !isDegenerate(s))
  return { kept, dropped: samples.length - kept.length }
}
