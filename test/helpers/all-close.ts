import assert from 'node:assert/strict'

type Numeric = ArrayLike<number> | ArrayLike<bigint>

export interface CloseReport {
  maxAbsDiff: number
  maxRelDiff: number
  worstIndex: number
}

/** Element-wise comparison report (llm.c's check_tensor): worst absolute and relative difference. */
export function compareArrays(actual: Numeric, expected: Numeric): CloseReport {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs expected ${expected.length}`)
  let maxAbsDiff = 0
  let maxRelDiff = 0
  let worstIndex = -1
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i])
    const e = Number(expected[i])
    const abs = Math.abs(a - e)
    const rel = abs / Math.max(Math.abs(e), Number.MIN_VALUE)
    if (Number.isNaN(abs) || abs > maxAbsDiff) {
      maxAbsDiff = Number.isNaN(abs) ? Number.POSITIVE_INFINITY : abs
      worstIndex = i
    }
    if (rel > maxRelDiff) maxRelDiff = rel
  }
  return { maxAbsDiff, maxRelDiff, worstIndex }
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| everywhere, naming the worst element. */
export function assertAllClose(
  actual: Numeric,
  expected: Numeric,
  { rtol = 1e-6, atol = 0, what = 'tensor' } = {},
) {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: length ${actual.length} vs expected ${expected.length}`,
  )
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i])
    const e = Number(expected[i])
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      const r = compareArrays(actual, expected)
      assert.fail(
        `${what}: element ${i} is ${a}, expected ${e} (maxAbsDiff ${r.maxAbsDiff} at ${r.worstIndex}, maxRelDiff ${r.maxRelDiff}, rtol ${rtol}, atol ${atol})`,
      )
    }
  }
}
