import assert from 'node:assert/strict'
import { test } from 'node:test'
import { meanCi, pairedDifferenceCi } from '../../src/eval/stats.ts'

test('95% interval of a mean uses Student t for small samples', () => {
  const ci = meanCi([1, 2, 3, 4, 5])
  // sd = sqrt(2.5), t(4) = 2.776
  const half = 2.776 * Math.sqrt(2.5 / 5)
  assert.equal(ci.mean, 3)
  assert.ok(Math.abs(ci.low - (3 - half)) < 1e-9 && Math.abs(ci.high - (3 + half)) < 1e-9)
  assert.ok(Number.isNaN(meanCi([1]).low))
})

test('paired difference interval: per-seed differences, refusing unequal samples', () => {
  const ci = pairedDifferenceCi([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
  assert.ok(Math.abs(ci.mean - 0.1) < 1e-12)
  assert.ok(Math.abs(ci.high - ci.low) < 1e-9, 'identical differences have no spread')
  assert.throws(() => pairedDifferenceCi([1, 2], [1]), RangeError)
})
