/**
 * Query-specific principles written by the policy: the prompt, the parser of its answers, and the
 * fallbacks (bounded retries, then the query dropped and counted) on a real tiny model whose random
 * weights never answer in the format; and queries that bring their own features under policy selection.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { openModelPolicy } from '../../src/sso/model-adapter.ts'
import { planQueries } from '../../src/sso/pairs.ts'
import type { TrainablePolicy } from '../../src/sso/policy-port.ts'
import { DEFAULT_PRINCIPLE_SET } from '../../src/sso/principles.ts'
import { Rng } from '../../src/sso/rng.ts'
import {
  parseWrittenPrinciple,
  WRITTEN_FEATURE,
  writePrinciples,
  writingPrompt,
} from '../../src/sso/written-principles.ts'

test('the writing prompt asks for two labelled lines and ends with the query; its examples parse', () => {
  const prompt = writingPrompt('Explain photosynthesis to a child.')
  assert.match(prompt.system ?? '', /exactly two lines, "Good: <guideline>" and "Bad: <guideline>"/)
  assert.ok(prompt.user.endsWith('Request: Explain photosynthesis to a child.'))
  const shots = prompt.user.split('\n\n').slice(0, -1)
  assert.equal(shots.length, 2)
  for (const shot of shots) {
    const parsed = parseWrittenPrinciple(shot)
    assert.ok(parsed.ok, shot)
  }
})

test('well-formed answers parse: first Good and Bad lines, bullets and bold tolerated', () => {
  assert.deepEqual(parseWrittenPrinciple('Good: Be exact.\nBad: Be vague.'), {
    ok: true,
    principle: { feature: WRITTEN_FEATURE, good: 'Be exact.', bad: 'Be vague.' },
  })
  const decorated = parseWrittenPrinciple(
    'Sure!\n- **Good:** Cite the numbers.\n* bad: Invent numbers.\nGood: ignored',
  )
  assert.ok(decorated.ok)
  assert.equal(decorated.principle.good, 'Cite the numbers.')
  assert.equal(decorated.principle.bad, 'Invent numbers.')
})

test('malformed answers are rejected with a reason', () => {
  const reason = (answer: string) => {
    const parsed = parseWrittenPrinciple(answer)
    assert.equal(parsed.ok, false, answer)
    return parsed.ok ? '' : parsed.reason
  }
  assert.match(reason('Bad: Be vague.'), /no Good/)
  assert.match(reason('Good: Be exact.'), /no Bad/)
  assert.match(reason('Good:   \nBad: Be vague.'), /no Good/)
  assert.match(reason('Good: Be exact.\nBad: be EXACT.'), /same/)
  assert.match(reason(`Good: ${'a'.repeat(401)}\nBad: Be vague.`), /longer than 400/)
  assert.match(reason('goodness: none\nthe bad part'), /no Good/)
})

let root: string
let policy: TrainablePolicy

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-written-'))
  const modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 5 })
  policy = await openModelPolicy({
    modelDir,
    device: 'cpu',
    finetuning: 'full',
    lora: { rank: 4, alpha: 8, targets: ['q_proj'] },
    optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 },
    maxPromptTokens: 512,
    seed: 1,
  })
})
after(async () => {
  await policy.dispose()
  await rm(root, { recursive: true, force: true })
})

const sampling = { temperature: 1, top_p: 1, top_k: 0 }

test('retries are bounded: a random model never answers in the format, so each query is tried `attempts` times and dropped', async () => {
  const queries = ['Name a colour.', 'Count to three.', 'Say hello.']
  const { principles, stats } = await writePrinciples(
    policy,
    queries,
    { attempts: 2, sampling },
    2,
    Rng.fromSeed(3),
  )
  assert.deepEqual(principles, [undefined, undefined, undefined])
  assert.deepEqual(stats, { written: 0, malformed: 6, dropped: 3 })
})

/** A query without features and one that brings its own, planned with the policy's selection. */
const MIXED_QUERIES = [{ prompt: 'Say hello.' }, { prompt: 'Be brief.', features: ['clarity'] }]
const planMixed = (source: 'set' | 'policy_written') =>
  planQueries(
    MIXED_QUERIES,
    DEFAULT_PRINCIPLE_SET,
    {
      source,
      selection: { mode: 'policy', featuresPerQuery: 2, concisionProbability: 0 },
      writing: { attempts: 1, sampling },
    },
    Rng.fromSeed(4),
    policy,
    4,
  )

test('planning from written principles drops the queries it failed to write for and keeps queries with own features', async () => {
  const { planned, stats } = await planMixed('policy_written')
  assert.deepEqual(
    planned.map((p) => [p.instruction, p.principles.map((x) => x.feature), p.written]),
    [['Be brief.', ['clarity'], undefined]],
  )
  assert.deepEqual(stats, { invalidSelections: 0, writing: { written: 0, malformed: 1, dropped: 1 } })
})

test('policy selection keeps the features a query brings and asks the policy only for the others', async () => {
  const { planned } = await planMixed('set')
  assert.deepEqual(
    planned.map((p) => p.instruction),
    MIXED_QUERIES.map((q) => q.prompt),
  )
  assert.deepEqual(
    planned[1].principles.map((x) => x.feature),
    ['clarity'],
  )
  assert.equal(planned[0].principles.length, 2, 'the policy’s selection, repaired to two features')
})
