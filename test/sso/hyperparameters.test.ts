import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseHyperparameters } from '../../src/sso/hyperparameters.ts'

test('defaults follow the reference scripts and nested defaults are filled', () => {
  const hp = parseHyperparameters({ sampling: { raw: { temperature: 0 } } })
  assert.equal(hp.loss_type, 'ipo')
  assert.equal(hp.beta, 0.2)
  assert.equal(hp.theta_g, 0.1)
  assert.equal(hp.alpha, 0.66)
  assert.deepEqual(hp.adam_betas, [0.9, 0.95])
  assert.equal(hp.sampling.raw.temperature, 0)
  assert.equal(hp.sampling.chosen.temperature, 0.7)
  assert.equal(hp.lora.rank, 8)
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
