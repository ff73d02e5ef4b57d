/**
 * The optional log-prob filter of the method. Inputs are mean token log-probs l(y|c) of y+ and y- under
 * the three contexts o = x (plain), p = x+ (good principle), n = x- (bad principle).
 */

export interface FilterScores {
  chosen: { o: number; p: number; n: number }
  rejected: { o: number; p: number; n: number }
}

export interface FilterStats {
  total: number
  /** Dropped because the principles do not order the likelihoods as they should. */
  droppedOrder: number
  /** Dropped because the plain-context likelihood is below the batch mean (not near on-policy). */
  droppedOffPolicy: number
  /** Dropped because the contrast is below the batch mean (weak gap). */
  droppedWeakGap: number
  kept: number
}

/** l(y+|x+) > l(y+|x) > l(y+|x-) and l(y-|x-) > l(y-|x) > l(y-|x+). */
export function principlesOrderLikelihoods(s: FilterScores): boolean {
  const c = s.chosen
  const r = s.rejected
  return c.p > c.o && c.o > c.n && r.n > r.o && r.o > r.p
}

/** How near the pair is to what the policy says unprompted: mean of l(y+|x) and l(y-|x). */
export function plainLikelihood(s: FilterScores): number {
  return (s.chosen.o + s.rejected.o) / 2
}

/** How strongly the principles separate the two responses: [l(y+|x+) - l(y+|x-)] + [l(y-|x-) - l(y-|x+)]. */
export function contrast(s: FilterScores): number {
  return s.chosen.p - s.chosen.n + (s.rejected.n - s.rejected.p)
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * Returns the indices kept. The two mean thresholds are taken over the samples that pass the ordering
 * test, both computed on that same set, so the result does not depend on the order of the two cuts.
 */
export function filterByLogprobs(scores: readonly FilterScores[]): { keep: number[]; stats: FilterStats } {
  const ordered = scores.map((s, i) => ({ s, i })).filter(({ s }) => principlesOrderLikelihoods(s))
  const stats: FilterStats = {
    total: scores.length,
    droppedOrder: scores.length - ordered.length,
    droppedOffPolicy: 0,
    droppedWeakGap: 0,
    kept: 0,
  }
  if (ordered.length === 0) return { keep: [], stats }
  const plainMean = mean(ordered.map(({ s }) => plainLikelihood(s)))
  const contrastMean = mean(ordered.map(({ s }) => contrast(s)))
  const keep: number[] = []
  for (const { s, i } of ordered) {
    if (plainLikelihood(s) < plainMean) stats.droppedOffPolicy++
    else if (contrast(s) < contrastMean) stats.droppedWeakGap++
    else keep.push(i)
  }
  stats.kept = keep.length
  return { keep, stats }
}
