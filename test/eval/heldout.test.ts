import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  BENCH_DATA_DEFAULTS,
  BENCH_EVAL_FAMILIES,
  BENCH_TRAIN_FAMILIES,
  benchEvalItems,
  benchInDistributionItems,
  benchPrincipleSet,
  benchQueries,
  benchSftCorpus,
  trainingTexts,
} from '../../src/eval/benchmark-data.ts'
import {
  ALL_FAMILIES,
  DISTRACTOR_PRINCIPLES,
  HELD_OUT_FAMILIES,
  TASK_FAMILIES,
} from '../../src/eval/families.ts'
import { contentNgrams, findLeaks, sharedPoolEntries } from '../../src/eval/leakage.ts'
import { makeEvalItems } from '../../src/eval/run-eval.ts'
import { syntheticSftCorpus } from '../../src/eval/synthetic-corpus.ts'
import { type EvalSplit, matchTemplate, type TaskFamily } from '../../src/eval/task-family.ts'
import { parseSelection } from '../../src/sso/principles.ts'
import { Rng } from '../../src/sso/rng.ts'

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8]
const EVAL_SPLITS: EvalSplit[] = ['validation', 'test']

/** An item with the demonstrations an SFT corpus would pair with it (good and bad, several draws). */
function withAnswers(families: readonly TaskFamily[], prompt: string) {
  const f = families.find((x) => x.owns(prompt))!
  const rng = Rng.fromSeed(3)
  const answers = Array.from({ length: 6 }, (_, i) => f.demonstrate(prompt, i % 2 === 0, rng))
  return { prompt, answers }
}

test('benchmark: no validation or test prompt, 3-gram of its content words, or answer to it is in training data', () => {
  const o = BENCH_DATA_DEFAULTS
  const training = trainingTexts(
    benchSftCorpus(o),
    SEEDS.flatMap((s) => benchQueries(o, s)),
  )
  for (const split of EVAL_SPLITS) {
    const items = benchEvalItems(o, split)
    assert.ok(items.length >= o.evalPerFamily * BENCH_EVAL_FAMILIES.length)
    const leaks = findLeaks(
      items.map((it) => withAnswers(BENCH_EVAL_FAMILIES, it.prompt)),
      training,
    )
    assert.deepEqual(leaks, [], `${split}: ${JSON.stringify(leaks.slice(0, 5))}`)
  }
})

test('every family: evaluation prompts of either split, drawn at length, never leak into any training corpus', () => {
  const trained = Object.values(TASK_FAMILIES)
  const sft = syntheticSftCorpus(trained, { perFamily: 200, plainGoodRate: 0.3, seed: 9 })
  const rng = Rng.fromSeed(4)
  const queries = trained.flatMap((f) =>
    Array.from({ length: 200 }, () => ({ prompt: f.makePrompt(rng, 'train') })),
  )
  const training = trainingTexts(sft, queries)
  for (const split of EVAL_SPLITS) {
    const items = makeEvalItems(ALL_FAMILIES, 100, 12, split)
    const leaks = findLeaks(
      items.map((it) => withAnswers(ALL_FAMILIES, it.prompt)),
      training,
    )
    assert.deepEqual(leaks, [], `${split}: ${JSON.stringify(leaks.slice(0, 5))}`)
  }
})

test('the in-distribution diagnostic draws from the training split of the trained families only', () => {
  const o = BENCH_DATA_DEFAULTS
  const items = benchInDistributionItems(o)
  assert.equal(items.length, o.evalPerFamily * BENCH_TRAIN_FAMILIES.length)
  const evaluation = new Set(EVAL_SPLITS.flatMap((split) => benchEvalItems(o, split).map((it) => it.prompt)))
  for (const it of items) {
    const family = BENCH_TRAIN_FAMILIES.find((f) => f.name === it.family)
    assert.ok(family, `${it.family} is not a trained family`)
    assert.equal(matchTemplate(family.pools, it.prompt)?.split, 'train', it.prompt)
    assert.ok(!evaluation.has(it.prompt), `${it.prompt} is an evaluation prompt`)
  }
})

test('validation and test prompts are disjoint from each other', () => {
  const validation = makeEvalItems(ALL_FAMILIES, 100, 12, 'validation').map((it) => it.prompt)
  const test = makeEvalItems(ALL_FAMILIES, 100, 13, 'test')
  const leaks = findLeaks(
    test.map((it) => ({ prompt: it.prompt })),
    validation,
  )
  assert.deepEqual(leaks, [], JSON.stringify(leaks.slice(0, 5)))
})

test('every family: evaluation templates and vocabulary share nothing with the training ones or each other', () => {
  for (const f of ALL_FAMILIES) {
    assert.deepEqual(sharedPoolEntries(f), [])
    assert.ok(f.pools.validation && f.pools.test, `${f.name} has both evaluation splits`)
    const trainWords = new Set((f.pools.train?.vocab ?? []).flatMap((v) => contentNgrams(v, 1)))
    for (const split of EVAL_SPLITS)
      for (const v of f.pools[split]?.vocab ?? [])
        for (const w of contentNgrams(v, 1)) assert.ok(!trainWords.has(w), `${f.name} ${split}: '${w}'`)
  }
})

test('the leak finder catches a copied prompt, a shared 3-gram, a lone content word and a copied answer', () => {
  const training = ['Please explain how to brew tea quickly.', 'Where is the zoo?', 'Sure, glad you asked.']
  const kinds = (prompt: string, answers?: string[]) =>
    findLeaks([{ prompt, answers }], training).map((l) => l.kind)
  assert.deepEqual(kinds('Explain how to brew tea quickly.'), [
    'prompt_in_training',
    'shared_ngram',
    'shared_ngram',
  ])
  assert.deepEqual(kinds('Tell me: explain, brew tea!'), ['shared_ngram'])
  assert.deepEqual(kinds('A zoo!'), ['shared_ngram'])
  assert.deepEqual(kinds('A new question', ['sure, glad  you asked.']), ['answer_in_training'])
  assert.deepEqual(kinds('Describe a red kite'), [])
})

test('a held-out family: its principle is in no training text and not in the principle set', () => {
  const o = BENCH_DATA_DEFAULTS
  const training = trainingTexts(benchSftCorpus(o), benchQueries(o, 1)).join('\n')
  const set = benchPrincipleSet()
  const heldOut = Object.values(HELD_OUT_FAMILIES)
  assert.ok(heldOut.length > 0)
  for (const f of heldOut) {
    assert.ok(BENCH_EVAL_FAMILIES.includes(f))
    assert.ok(!BENCH_TRAIN_FAMILIES.includes(f))
    assert.equal(f.pools.train, undefined)
    assert.ok(!training.includes(f.principle.good) && !training.includes(f.principle.bad))
    assert.ok(!set.principles.some((p) => p.feature === f.principle.feature))
    assert.throws(() => f.makePrompt(Rng.fromSeed(1), 'train'), /no 'train' prompts/)
  }
})

test('the principle set carries distractors that no benchmark checker measures', () => {
  const features = benchPrincipleSet().principles.map((p) => p.feature)
  const measured = new Set(BENCH_EVAL_FAMILIES.map((f) => f.principle.feature))
  assert.ok(DISTRACTOR_PRINCIPLES.length >= 2)
  for (const d of DISTRACTOR_PRINCIPLES) {
    assert.ok(features.includes(d.feature))
    assert.ok(!measured.has(d.feature))
  }
  for (const f of BENCH_TRAIN_FAMILIES) assert.ok(features.includes(f.principle.feature))
})

test('training queries carry no features: the policy chooses the principles', () => {
  for (const q of benchQueries(BENCH_DATA_DEFAULTS, 1)) assert.equal(q.features, undefined)
})

test('the SFT corpus answers the selection prompt on training requests: their own quality first, in the format the parser reads', () => {
  const o = BENCH_DATA_DEFAULTS
  const set = benchPrincipleSet()
  const rows = benchSftCorpus(o).filter((r) => r.system?.startsWith('You pick which qualities'))
  assert.equal(rows.length, o.sftPerFamily * BENCH_TRAIN_FAMILIES.length)
  const options = { mode: 'policy' as const, featuresPerQuery: 2, concisionProbability: 0 }
  for (const row of rows) {
    const request = row.prompt
      .split('Request: ')
      .at(-1)!
      .replace(/\nQualities:$/, '')
    const family = BENCH_TRAIN_FAMILIES.find((f) => f.owns(request))
    assert.ok(family, `a training request of a trained family: ${request}`)
    const { principles, invalid } = parseSelection(set, row.response, options, Rng.fromSeed(1))
    assert.equal(invalid, 0, row.response)
    assert.equal(principles[0], family.principle)
    assert.notEqual(principles[1], family.principle)
  }
})
