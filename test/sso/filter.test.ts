import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cleanTriples } from '../../src/sso/cleaning.ts'
import { type FilterScores, filterByLogprobs } from '../../src/sso/filter.ts'

test('cleaning drops samples with any two responses identical after trimming', () => {
  const { kept, dropped } = cleanTriples([
    { chosen: 'a', rejected: 'b', raw: 'c' },
    { chosen: 'a ', rejected: ' a', raw: 'c' },
    { chosen: 'a', rejected: 'b', raw: 'b\n' },
    { chosen: 'x', rejected: 'y', raw: 'x' },
  ])
  assert.equal(kept.length, 1)
  assert.equal(dropped, 3)
})

const s = (co: number, cp: number, cn: number, ro: number, rp: number, rn: number): FilterScores => ({
  chosen: { o: co, p: cp, n: cn },
  rejected: { o: ro, p: rp, n: rn },
})

test('the filter keeps ordered, near on-policy, high-contrast pairs (hand-computed)', () => {
  const scores = [
    s(-1, -0.5, -2, -1, -2, -0.5), // ordered; plain -1; contrast 1.5+1.5 = 3
    s(-3, -2, -4, -3, -4, -2), // ordered; plain -3; contrast 2+2 = 4
    s(-1, -0.9, -1.1, -1, -1.1, -0.9), // ordered; plain -1; contrast 0.2+0.2 = 0.4
    s(-1, -2, -0.5, -1, -2, -0.5), // chosen not ordered
  ]
  // ordered set: plain mean -5/3, contrast mean 7.4/3 = 2.467
  const { keep, stats } = filterByLogprobs(scores)
  assert.deepEqual(keep, [0])
  assert.deepEqual(stats, { total: 4, droppedOrder: 1, droppedOffPolicy: 1, droppedWeakGap: 1, kept: 1 })
})

test('the filter returns nothing when no pair is ordered', () => {
  assert.deepEqual(filterByLogprobs([s(0, 0, 0, 0, 0, 0)]).keep, [])
})
