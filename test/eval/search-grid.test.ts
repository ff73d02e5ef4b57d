import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseKnobs, pointLabel, searchGrids } from '../../src/eval/search-grid.ts'

const VARIANTS = ['sso', 'pbaa']

test('a knob crosses the learning rates with its values', () => {
  const knobs = parseKnobs(['sso=theta_g:0.1,0.5', 'pbaa=beta:0.1,0.4'], VARIANTS)
  assert.deepEqual(knobs.sso, { key: 'theta_g', values: [0.1, 0.5] })
  const grids = searchGrids([1e-4, 3e-4], VARIANTS, knobs)
  assert.deepEqual(grids.sso, [
    { lr: 1e-4, knob: { theta_g: 0.1 } },
    { lr: 1e-4, knob: { theta_g: 0.5 } },
    { lr: 3e-4, knob: { theta_g: 0.1 } },
    { lr: 3e-4, knob: { theta_g: 0.5 } },
  ])
  assert.equal(grids.pbaa.length, 4)
  assert.deepEqual(grids.pbaa.map(pointLabel), [
    'lr0.0001-beta0.1',
    'lr0.0001-beta0.4',
    'lr0.0003-beta0.1',
    'lr0.0003-beta0.4',
  ])
})

test('without knobs every variant searches the learning rates alone', () => {
  const grids = searchGrids([1e-4, 3e-4, 1e-3], VARIANTS, parseKnobs([], VARIANTS))
  assert.deepEqual(grids.pbaa, [
    { lr: 1e-4, knob: {} },
    { lr: 3e-4, knob: {} },
    { lr: 1e-3, knob: {} },
  ])
  assert.equal(pointLabel(grids.sso[0]), 'lr0.0001')
})

test('a search larger for one variant than for another is refused', () => {
  const knobs = parseKnobs(['sso=theta_g:0.1,0.5'], VARIANTS)
  assert.throws(() => searchGrids([1e-4, 3e-4], VARIANTS, knobs), /same size, got sso 4, pbaa 2 points/)
  // as many values for both is fair, whatever the setting
  const fair = parseKnobs(['sso=theta_g:0.1,0.3,0.5', 'pbaa=beta:0.05,0.1,0.2'], VARIANTS)
  assert.equal(searchGrids([3e-4], VARIANTS, fair).pbaa.length, 3)
})

test('a switch is a knob too, searched on and off', () => {
  const knobs = parseKnobs(['sso=filter:false,true', 'pbaa=filter:false,true'], VARIANTS)
  assert.deepEqual(knobs.pbaa, { key: 'filter', values: [false, true] })
  assert.deepEqual(
    searchGrids([1e-4], VARIANTS, knobs).sso.map((p) => p.knob),
    [{ filter: false }, { filter: true }],
  )
  // the trainer's validation still applies: a switch where a number belongs is refused
  assert.throws(() => parseKnobs(['sso=theta_g:true,false'], VARIANTS), /theta_g/)
})

test('knob specs are checked before anything runs', () => {
  assert.throws(() => parseKnobs(['sso:theta_g=0.1'], VARIANTS), /expected VARIANT=KEY:V1,V2/)
  assert.throws(() => parseKnobs(['sso_no_g=beta:0.1,0.2'], VARIANTS), /not a variant of this run/)
  assert.throws(() => parseKnobs(['sso=lr:1e-4,3e-4'], VARIANTS), /searched by --lrs/)
  assert.throws(() => parseKnobs(['sso=theta_g:0.1,x'], VARIANTS), /values must be numbers or true\/false/)
  assert.throws(() => parseKnobs(['sso=theta_g:0.1,0.1'], VARIANTS), /values repeat/)
  assert.throws(() => parseKnobs(['sso=theta_g:0.1', 'sso=beta:0.1'], VARIANTS), /already searches theta_g/)
  // the trainer's own validation: an unknown hyperparameter, a value out of its range
  assert.throws(() => parseKnobs(['sso=thetag:0.1,0.5'], VARIANTS), /thetag is not a known hyperparameter/)
  assert.throws(() => parseKnobs(['sso=theta_g:-1,0.5'], VARIANTS), /theta_g/)
})
