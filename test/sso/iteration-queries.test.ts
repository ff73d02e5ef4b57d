import assert from 'node:assert/strict'
import { test } from 'node:test'
import { iterationQueries } from '../../src/sso/iterations.ts'

const pool = Array.from({ length: 12 }, (_, i) => ({ prompt: `q${i}` }))
const prompts = (k: number, n = 4, seed = 7) => iterationQueries(pool, n, seed, k).map((q) => q.prompt)

test('queries_per_iteration: iterations take new queries until the pool runs out, then wrap', () => {
  const [a, b, c] = [prompts(1), prompts(2), prompts(3)]
  assert.equal(new Set([...a, ...b, ...c]).size, 12, 'three iterations of 4 cover the 12 queries once')
  assert.deepEqual(prompts(4), a, 'the fourth iteration starts the shuffle again')
  assert.notDeepEqual(a, ['q0', 'q1', 'q2', 'q3'], 'the order is shuffled, not the file order')
})

test('queries_per_iteration: fixed by seed and iteration (a resumed run picks the same), 0 or n >= pool = all', () => {
  assert.deepEqual(prompts(2), prompts(2))
  assert.notDeepEqual(prompts(1, 4, 7), prompts(1, 4, 8))
  assert.deepEqual(
    prompts(1, 0),
    pool.map((q) => q.prompt),
  )
  assert.deepEqual(
    prompts(2, 12),
    pool.map((q) => q.prompt),
  )
  // a pool that does not divide: the slice wraps inside one iteration
  assert.equal(new Set(prompts(3, 5)).size, 5)
})
