import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Rng } from '../../src/sso/rng.ts'

test('a restored state continues the identical stream', () => {
  const a = Rng.fromSeed(42)
  for (let i = 0; i < 10; i++) a.next()
  const b = Rng.fromState(JSON.parse(JSON.stringify(a.state())))
  for (let i = 0; i < 100; i++) assert.equal(a.nextUint32(), b.nextUint32())
})

test('different seeds give different streams; values are uniform in [0, 1)', () => {
  const a = Rng.fromSeed(1)
  const b = Rng.fromSeed(2)
  assert.notEqual(a.next(), b.next())
  let sum = 0
  for (let i = 0; i < 10000; i++) {
    const v = a.next()
    assert.ok(v >= 0 && v < 1)
    sum += v
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02)
})

test('sample returns distinct items', () => {
  const s = Rng.fromSeed(9).sample([1, 2, 3, 4, 5], 3)
  assert.equal(new Set(s).size, 3)
})
