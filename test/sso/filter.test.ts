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

test('the filter keeps ordered pairs with each side near on-policy and contrasted (hand-computed)', () => {
  const scores = [
    s(-1, -0.2, -2, -1, -2, -0.5), // plain -1 / -1; contrast 1.8 / 1.5
    s(-3, -2, -4, -3, -4, -2), // plain -3 / -3; contrast 2 / 2
    s(-1, -0.9, -1.1, -1, -1.1, -0.9), // plain -1 / -1; contrast 0.2 / 0.2
    s(-0.2, -0.1, -3, -2.2, -3, -1.5), // plain -0.2 / -2.2; contrast 2.9 / 1.5
    s(-1, -2, -0.5, -1, -2, -0.5), // chosen not ordered
  ]
  // over the four ordered samples: plain means -1.3 (chosen) and -1.8 (rejected); contrast means
  // 1.725 (chosen) and 1.3 (rejected). Sample 3's likely chosen does not carry its off-policy rejected
  // through, as it would with one pooled threshold (pooled plain -1.2 >= mean -1.55).
  const { keep, stats } = filterByLogprobs(scores)
  assert.deepEqual(keep, [0])
  assert.deepEqual(stats, { total: 5, droppedOrder: 1, droppedOffPolicy: 2, droppedWeakGap: 1, kept: 1 })
})

test('a weak contrast on one side drops the pair even when the other side is strong', () => {
  const scores = [
    s(-1, -0.95, -1.05, -1, -1.05, -0.95), // contrast 0.1 / 0.1
    s(-1, -0.5, -2.5, -1, -1.5, -0.5), // contrast 2 / 1
    s(-1, 0, -3, -1, -1.2, -0.8), // contrast 3 / 0.4: pooled 3.4 would pass the pooled mean 2.2
  ]
  // contrast means 1.7 (chosen) and 0.5 (rejected)
  const { keep, stats } = filterByLogprobs(scores)
  assert.deepEqual(keep, [1])
  assert.equal(stats.droppedWeakGap, 2)
})

test('the filter returns nothing when no pair is ordered', () => {
  assert.deepEqual(filterByLogprobs([s(0, 0, 0, 0, 0, 0)]).keep, [])
})
