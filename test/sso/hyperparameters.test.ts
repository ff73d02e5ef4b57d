import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseHyperparameters, resolveHyperparameters } from '../../src/sso/hyperparameters.ts'

test('defaults follow the reference scripts and nested defaults are filled', () => {
  const hp = resolveHyperparameters('sso', { sampling: { raw: { temperature: 0 } } })
  assert.equal(hp.loss_type, 'ipo')
  assert.equal(hp.beta, 0.2)
  assert.equal(hp.y0_greedy, false)
  assert.equal(hp.theta_g, 0.1)
  assert.equal(hp.alpha, 0.66)
  assert.deepEqual(hp.adam_betas, [0.9, 0.95])
  assert.equal(hp.sampling.raw.temperature, 0)
  assert.equal(hp.sampling.chosen.temperature, 0.7)
  assert.equal(hp.lora.rank, 8)
})

test('the method as published by default: the policy picks principles, each iteration a fresh optimizer', () => {
  const hp = resolveHyperparameters('sso', {})
  assert.equal(hp.principle_selection, 'policy')
  assert.equal(hp.principle_source, 'set')
  assert.equal(hp.keep_optimizer_state, false)
})

test("sso_v2's policy step defaults to DPO beta 0.1 with greedy y0; explicit settings win", () => {
  const v2 = resolveHyperparameters('sso_v2', {})
  assert.deepEqual([v2.loss_type, v2.beta, v2.y0_greedy], ['dpo', 0.1, true])
  const set = resolveHyperparameters('sso_v2', { loss_type: 'ipo', beta: 0.3, y0_greedy: false })
  assert.deepEqual([set.loss_type, set.beta, set.y0_greedy], ['ipo', 0.3, false])
  // what a run stores leaves the method-dependent settings unset, so its method decides them later
  const stored = parseHyperparameters({})
  assert.deepEqual([stored.loss_type, stored.beta, stored.y0_greedy], [undefined, undefined, undefined])
})

test('bad values, unknown keys and cross-field rules are all reported', () => {
  assert.throws(
    () => parseHyperparameters({ beta: -1, foo: 1, loss_type: 'simpo' }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'validation_failed')
      assert.match(e.message, /beta/)
      assert.match(e.message, /foo is not a known/)
      assert.match(e.message, /loss_type/)
      return true
    },
  )
  assert.throws(() => parseHyperparameters({ principle_selection: 'fixed' }), /fixed_features/)
})
