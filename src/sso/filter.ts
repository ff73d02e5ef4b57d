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
  /** Dropped because a side's plain-context likelihood is below that side's mean (not near on-policy). */
  droppedOffPolicy: number
  /** Dropped because a side's contrast is below that side's mean (weak gap). */
  droppedWeakGap: number
  kept: number
}

/** l(y+|x+) > l(y+|x) > l(y+|x-) and l(y-|x-) > l(y-|x) > l(y-|x+). */
export function principlesOrderLikelihoods(s: FilterScores): boolean {
  const c = s.chosen
  const r = s.rejected
  return c.p > c.o && c.o > c.n && r.n > r.o && r.o > r.p
}

type Side = 'chosen' | 'rejected'
const SIDES: readonly Side[] = ['chosen', 'rejected']

/** How near one response is to what the policy says unprompted: l(y|x). */
const plainLikelihood = (s: FilterScores, side: Side): number => s[side].o

/**
 * How strongly the principles pull one response towards its own side: l(y+|x+) - l(y+|x-) for the
 * chosen, l(y-|x-) - l(y-|x+) for the rejected.
 */
const contrast = (s: FilterScores, side: Side): number =>
  side === 'chosen' ? s.chosen.p - s.chosen.n : s.rejected.n - s.rejected.p

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * Returns the indices kept. Each side has its own thresholds (its mean plain likelihood and its mean
 * contrast), so a very likely chosen cannot carry an off-policy rejected through. All four means are
 * taken over the samples that pass the ordering test, so the result does not depend on the order of
 * the cuts.
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
  const threshold = (f: typeof contrast, side: Side) => mean(ordered.map(({ s }) => f(s, side)))
  const plainMin = {
    chosen: threshold(plainLikelihood, 'chosen'),
    rejected: threshold(plainLikelihood, 'rejected'),
  }
  const contrastMin = { chosen: threshold(contrast, 'chosen'), rejected: threshold(contrast, 'rejected') }
  const keep: number[] = []
  for (const { s, i } of ordered) {
    if (SIDES.some((side) => plainLikelihood(s, side) < plainMin[side])) stats.droppedOffPolicy++
    else if (SIDES.some((side) => contrast(s, side) < contrastMin[side])) stats.droppedWeakGap++
    else keep.push(i)
  }
  stats.kept = keep.length
  return { keep, stats }
}
