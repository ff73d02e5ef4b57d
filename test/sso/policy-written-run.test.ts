/**
 * principle_source policy_written end to end on the tiny model: the model is first taught (SFT) to
 * answer the writing prompt, then one SSO iteration has it write each query's principles; the written
 * principles end up in the sample records and the system messages, and the counts add up.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { toJsonl, validateDataset } from '../../src/sso/records.ts'
import type { TrainerJob } from '../../src/sso/trainer-interface.ts'
import { WRITTEN_FEATURE, writingPrompt } from '../../src/sso/written-principles.ts'
import { trainToEnd } from './helpers/train.ts'

let root: string
const ANSWER = 'Good: Answer politely.\nBad: Answer rudely.'

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-policy-written-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function train(
  method: TrainerJob['method'],
  modelDir: string,
  rows: unknown[],
  hp: Record<string, unknown>,
) {
  const data = join(root, `${method}.jsonl`)
  await writeFile(data, toJsonl(rows))
  const outputDir = join(root, method)
  const metrics = await trainToEnd({
    runId: method,
    method,
    modelDir,
    datasetPaths: [data],
    // one thread per op: the SFT that teaches the format must not depend on the machine's load
    hyperparameters: { ...hp, deterministic: true },
    device: 'cpu',
    seed: 7,
    outputDir,
  })
  return { metrics, outputDir }
}

test('sso with policy-written principles: written, kept with the samples, counted', async () => {
  const tiny = join(root, 'tiny')
  await makeTinyModel(tiny, { seed: 6 })
  // Fixed queries: the test is about the writing path, not about any benchmark's prompt generator.
  const prompts = [
    'Where is the museum?',
    'Where is the museum?',
    'Where is the bakery?',
    'Where is the school?',
  ]
  // teach the format: every writing prompt answered with the same two lines
  const sft = prompts.map((p) => {
    const { system, user } = writingPrompt(p)
    return { system, prompt: user, response: ANSWER }
  })
  await train('sft', tiny, sft, {
    // lr 5e-3 brings the loss under 0.01 by epoch 40 on any rounding; 1e-2 oscillated around 0.5-0.8
    epochs: 50,
    batch_size: 4,
    lr: 5e-3,
    weight_decay: 0,
    schedule: 'constant',
  })

  const { metrics, outputDir } = await train(
    'sso',
    join(root, 'sft', 'final'),
    prompts.map((prompt) => ({ prompt })),
    {
      iterations: 1,
      principle_source: 'policy_written',
      principle_write_attempts: 2,
      concision_probability: 0,
      batch_size: 2,
      lr: 1e-3,
      max_new_tokens: 5,
      // principles are written with the chosen side's settings: greedy, so the taught format comes out;
      // the taught model answers everything alike, so the other sides sample hot enough to differ
      sampling: { chosen: { temperature: 0 }, rejected: { temperature: 3 }, raw: { temperature: 3 } },
    },
  )
  const it = metrics.find((m) => m.values['principles/written'] !== undefined)!.values
  assert.equal(it['principles/written'] + it['principles/dropped'], prompts.length)
  assert.ok(it['principles/written'] > 0, JSON.stringify(it))
  assert.ok(it['principles/malformed'] >= 2 * it['principles/dropped'])
  assert.ok(it['principles/malformed'] <= 2 * prompts.length)
  const records = validateDataset(
    'sso_records',
    await readFile(join(outputDir, 'samples', 'iteration-1.jsonl'), 'utf8'),
  ).rows
  assert.ok(records.length > 0, JSON.stringify(it))
  for (const r of records) {
    assert.deepEqual(r.principles, [WRITTEN_FEATURE])
    const w = r.written_principle!
    assert.ok(w.good && w.bad && w.good !== w.bad)
    assert.ok(r.p_system.includes(w.good) && r.n_system.includes(w.bad))
  }
})
