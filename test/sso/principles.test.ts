import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  DEFAULT_PRINCIPLE_SET,
  parseSelection,
  type SelectionOptions,
  selectionPrompt,
  selectPrinciples,
  systemPrompt,
  validatePrincipleSet,
} from '../../src/sso/principles.ts'
import { Rng } from '../../src/sso/rng.ts'

const random: SelectionOptions = { mode: 'random', featuresPerQuery: 2, concisionProbability: 0 }

test('the default set has eight distinct features and a concision pair, and validates', () => {
  assert.equal(DEFAULT_PRINCIPLE_SET.principles.length, 8)
  assert.ok(DEFAULT_PRINCIPLE_SET.concision)
  validatePrincipleSet(DEFAULT_PRINCIPLE_SET)
})

test('user-defined sets are validated with every problem listed', () => {
  const bad = {
    name: 'mine',
    principles: [
      { feature: 'tone', good: 'Be kind.', bad: 'Be kind.' },
      { feature: 'Tone', good: '', bad: 'x' },
    ],
  }
  assert.throws(() => validatePrincipleSet(bad), /identical.*duplicate feature name.*empty good text/)
})

test('random selection draws distinct features and is reproducible from the seed', () => {
  const a = selectPrinciples(DEFAULT_PRINCIPLE_SET, random, Rng.fromSeed(3))
  const b = selectPrinciples(DEFAULT_PRINCIPLE_SET, random, Rng.fromSeed(3))
  assert.equal(a.length, 2)
  assert.notEqual(a[0].feature, a[1].feature)
  assert.deepEqual(a, b)
})

test('fixed selection uses the named features and rejects unknown ones', () => {
  const opts: SelectionOptions = {
    mode: 'fixed',
    featuresPerQuery: 2,
    fixedFeatures: ['accuracy', 'Safety'],
    concisionProbability: 0,
  }
  const got = selectPrinciples(DEFAULT_PRINCIPLE_SET, opts, Rng.fromSeed(1)).map((p) => p.feature)
  assert.deepEqual(got, ['accuracy', 'safety'])
  assert.throws(
    () => selectPrinciples(DEFAULT_PRINCIPLE_SET, { ...opts, fixedFeatures: ['nope'] }, Rng.fromSeed(1)),
    /fixed feature 'nope'/,
  )
})

test('concision is appended with the given probability', () => {
  const rng = Rng.fromSeed(7)
  let withConcision = 0
  for (let i = 0; i < 2000; i++) {
    const sel = selectPrinciples(DEFAULT_PRINCIPLE_SET, { ...random, concisionProbability: 0.2 }, rng)
    if (sel.at(-1)?.feature === 'concision') withConcision++
  }
  assert.ok(withConcision > 330 && withConcision < 470, `${withConcision} of 2000`)
})

test('policy answers: invalid names dropped, duplicates dropped, padded at random, extras cut', () => {
  const rng = Rng.fromSeed(5)
  const a = parseSelection(DEFAULT_PRINCIPLE_SET, 'Accuracy, nonsense, accuracy', random, rng)
  assert.equal(a.invalid, 2)
  assert.equal(a.principles.length, 2)
  assert.equal(a.principles[0].feature, 'accuracy')
  assert.notEqual(a.principles[1].feature, 'accuracy')
  const b = parseSelection(DEFAULT_PRINCIPLE_SET, 'logic, clarity, safety.\nmore text', random, rng)
  assert.deepEqual(
    b.principles.map((p) => p.feature),
    ['logic', 'clarity'],
  )
  const prompt = selectionPrompt(DEFAULT_PRINCIPLE_SET, 'What is 2+2?', 2)
  assert.match(prompt.user, /Request: What is 2\+2\?\nQualities:$/)
  assert.match(prompt.system, /exactly 2/)
})

test('system prompts carry the good or the bad texts of the chosen principles', () => {
  const sel = DEFAULT_PRINCIPLE_SET.principles.slice(0, 2)
  const good = systemPrompt(sel, 'good')
  const bad = systemPrompt(sel, 'bad')
  for (const p of sel) {
    assert.ok(good.includes(p.good) && !good.includes(p.bad))
    assert.ok(bad.includes(p.bad) && !bad.includes(p.good))
  }
})
