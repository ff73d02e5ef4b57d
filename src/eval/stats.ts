/** Mean and two-sided 95% confidence interval (Student's t) of a small sample, e.g. one value per seed. */

// t quantiles at 0.975 for 1..30 degrees of freedom; beyond that the normal 1.96 is close enough
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
]

export interface Interval {
  mean: number
  low: number
  high: number
  n: number
}

export function meanCi(xs: readonly number[]): Interval {
  const n = xs.length
  const mean = xs.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { mean, low: Number.NaN, high: Number.NaN, n }
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)
  const half = (T975[n - 2] ?? 1.96) * Math.sqrt(variance / n)
  return { mean, low: mean - half, high: mean + half, n }
}

/** The interval of the paired differences a[i] - b[i] (same seed, same queries, same evaluation items). */
export function pairedDifferenceCi(a: readonly number[], b: readonly number[]): Interval {
  if (a.length !== b.length)
    throw new RangeError(`paired samples differ in size: ${a.length} and ${b.length}`)
  return meanCi(a.map((x, i) => x - b[i]))
}
