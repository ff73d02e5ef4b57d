/**
 * The other methods on a tiny model, end to end: SSO v2 (generator phase, regeneration, policy DPO),
 * DPO and IPO on imported pairs, and SFT on prompt/response pairs.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { familyPrincipleSet, TASK_FAMILIES } from '../../src/eval/families.ts'
import { syntheticSftCorpus } from '../../src/eval/synthetic-corpus.ts'
import { makeTinyModel } from '../../src/model/index.ts'
import { openModelPolicy } from '../../src/sso/model-adapter.ts'
import type { OpenModelOptions, OpenPolicy } from '../../src/sso/policy-port.ts'
import { toJsonl, validateDataset } from '../../src/sso/records.ts'
import { Rng } from '../../src/sso/rng.ts'
import { createTrainer } from '../../src/sso/trainer.ts'
import type { RunTrainer, TrainingMethod } from '../../src/sso/trainer-interface.ts'
import { trainToEnd } from './helpers/train.ts'

let root: string
let modelDir: string
const families = [TASK_FAMILIES.politeness, TASK_FAMILIES.refusal]

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-methods-'))
  modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 4 })
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function run(method: TrainingMethod, rows: unknown[], hp: Record<string, unknown>, train?: RunTrainer) {
  const data = join(root, `${method}.jsonl`)
  await writeFile(data, toJsonl(rows))
  const outputDir = join(root, method)
  const metrics = await trainToEnd(
    {
      runId: method,
      method,
      modelDir,
      principleSet: familyPrincipleSet(families),
      datasetPaths: [data],
      hyperparameters: { batch_size: 2, lr: 1e-3, weight_decay: 0, max_new_tokens: 5, ...hp },
      device: 'cpu',
      seed: 3,
      outputDir,
    },
    train,
  )
  assert.ok((await readdir(join(outputDir, 'final'))).includes('model.safetensors'))
  const steps = metrics.filter((m) => m.values.loss !== undefined)
  assert.ok(steps.length > 0)
  for (const s of steps)
    assert.ok(Number.isFinite(s.values.loss), `${method} step ${s.step}: loss ${s.values.loss}`)
  return { steps, outputDir }
}

test('sso_v2: the generator trains on L+ + L-, then the policy on DPO pairs it regenerated', async () => {
  const rng = Rng.fromSeed(2)
  const queries = Array.from({ length: 6 }, (_, i) => {
    const f = families[i % 2]
    return { prompt: f.makePrompt(rng), features: [f.principle.feature] }
  })
  const { steps, outputDir } = await run('sso_v2', queries, {
    iterations: 1,
    sampling: { chosen: { temperature: 1 }, rejected: { temperature: 1 }, raw: { temperature: 1 } },
  })
  assert.ok(steps.some((s) => s.values['sso/l_pos'] !== undefined && s.values['sso/l_neg'] !== undefined))
  assert.ok(
    steps.some((s) => s.values['sso/l_pos'] === undefined && s.values['rewards/margins'] !== undefined),
  )
  const samples = await readFile(join(outputDir, 'samples', 'iteration-1.jsonl'), 'utf8')
  assert.deepEqual(validateDataset('sso_records', samples).errors, [])
})

const pairs = () => {
  const rng = Rng.fromSeed(6)
  return Array.from({ length: 6 }, (_, i) => {
    const f = families[i % 2]
    const prompt = f.makePrompt(rng)
    return { prompt, chosen: f.demonstrate(prompt, true, rng), rejected: f.demonstrate(prompt, false, rng) }
  })
}

// ipo runs on float16 gradients (gradient_dtype), which a run passes down to the host optimizer
for (const [method, gradient_dtype] of [
  ['dpo', 'float32'],
  ['ipo', 'float16'],
] as const) {
  test(`${method} on imported pairs raises the chosen-over-rejected margin (${gradient_dtype} gradients)`, async () => {
    const opened: OpenModelOptions[] = []
    const recordingOpen: OpenPolicy = (o) => {
      opened.push(o)
      return openModelPolicy(o)
    }
    const { steps } = await run(
      method,
      pairs(),
      { epochs: 4, schedule: 'constant', warmup_ratio: 0, gradient_dtype },
      createTrainer(recordingOpen),
    )
    assert.deepEqual(
      opened.map((o) => o.gradientDtype),
      [gradient_dtype],
    )
    const first = steps[0].values['rewards/margins']
    const last = steps.at(-1)!.values['rewards/margins']
    // step 1 runs on the reference weights: the margin is zero up to float32 rounding between graphs
    assert.ok(Math.abs(first) < 1e-3, `first margin ${first}`)
    assert.ok(last > 0, `margin after training: ${last}`)
  })
}

test('sft lowers the loss on prompt/response pairs', async () => {
  const rows = syntheticSftCorpus(families, { perFamily: 2, plainGoodRate: 0.5, seed: 1 })
  const { steps } = await run('sft', rows, {
    epochs: 4,
    batch_size: 4,
    lr: 3e-3,
    schedule: 'constant',
    warmup_ratio: 0,
  })
  assert.ok(steps.at(-1)!.values.loss < steps[0].values.loss)
})

test('sso with LoRA on a bfloat16 base over two iterations: adapters merged into the reference between iterations', async () => {
  const rng = Rng.fromSeed(9)
  const queries = Array.from({ length: 6 }, (_, i) => {
    const f = families[i % 2]
    return { prompt: f.makePrompt(rng), features: [f.principle.feature] }
  })
  const opened: OpenModelOptions[] = []
  const recordingOpen: OpenPolicy = (o) => {
    opened.push(o)
    return openModelPolicy(o)
  }
  const { steps } = await run(
    'sso',
    queries,
    {
      iterations: 2,
      finetuning: 'lora',
      lora: { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'] },
      weights_dtype: 'bfloat16',
      sampling: { chosen: { temperature: 1 }, rejected: { temperature: 1 }, raw: { temperature: 1 } },
    },
    createTrainer(recordingOpen),
  )
  assert.deepEqual(
    opened.map((o) => o.weightsDtype),
    ['bfloat16'],
  )
  const byIteration = (k: number) => steps.filter((s) => s.iteration === k)
  assert.ok(byIteration(1).length > 0 && byIteration(2).length > 0)
  // each iteration starts at its own reference: fresh adapters (B = 0) give zero implicit rewards
  for (const k of [1, 2]) {
    const first = byIteration(k)[0].values['rewards/chosen']
    assert.ok(Math.abs(first) < 1e-3, `iteration ${k} first rewards/chosen ${first}`)
  }
})

test('rm: a Bradley-Terry reward model learns to rank held-out pairs', async () => {
  const rng = Rng.fromSeed(12)
  const rows = Array.from({ length: 40 }, () => {
    const f = TASK_FAMILIES.politeness
    const prompt = f.makePrompt(rng)
    return { prompt, chosen: f.demonstrate(prompt, true, rng), rejected: f.demonstrate(prompt, false, rng) }
  })
  const data = join(root, 'rm.jsonl')
  await writeFile(data, toJsonl(rows))
  const outputDir = join(root, 'rm')
  const metrics = await trainToEnd({
    runId: 'rm',
    method: 'rm',
    modelDir,
    datasetPaths: [data],
    hyperparameters: { batch_size: 4, lr: 1e-3, epochs: 3, eval_fraction: 0.25, weight_decay: 0 },
    device: 'cpu',
    seed: 5,
    outputDir,
  })
  const accuracy = metrics.filter((m) => m.values['eval/pairwise_accuracy'] !== undefined)
  assert.equal(accuracy.length, 3)
  assert.ok(metrics.some((m) => Number.isFinite(m.values['rewards/margins'])))
  assert.ok(
    accuracy.at(-1)!.values['eval/pairwise_accuracy'] >= 0.8,
    JSON.stringify(accuracy.map((a) => a.values)),
  )
  assert.ok((await readdir(join(outputDir, 'final'))).includes('model.safetensors'))
})

test('sso with principles chosen by the policy (the default) and the log-prob filter on', async () => {
  const rng = Rng.fromSeed(13)
  const queries = Array.from({ length: 6 }, (_, i) => ({ prompt: families[i % 2].makePrompt(rng) }))
  const data = join(root, 'policy-select.jsonl')
  await writeFile(data, toJsonl(queries))
  const outputDir = join(root, 'policy-select')
  const metrics = await trainToEnd({
    runId: 'policy-select',
    method: 'sso',
    modelDir,
    principleSet: familyPrincipleSet(families),
    datasetPaths: [data],
    hyperparameters: {
      iterations: 1,
      features_per_query: 1,
      filter: true,
      max_new_tokens: 5,
      sampling: { chosen: { temperature: 1 }, rejected: { temperature: 1 }, raw: { temperature: 1 } },
    },
    device: 'cpu',
    seed: 2,
    outputDir,
  })
  const it = metrics.find((m) => m.values.loss === undefined)!.values
  assert.ok(Number.isFinite(it['iteration/invalid_selections']))
  assert.equal(it['filter/total'], it['iteration/generated'] - it['iteration/dropped_identical'])
  assert.equal(
    it['filter/kept'],
    it['filter/total'] -
      it['filter/dropped_order'] -
      it['filter/dropped_off_policy'] -
      it['filter/dropped_weak_gap'],
  )
  const records = validateDataset(
    'sso_records',
    await readFile(join(outputDir, 'samples', 'iteration-1.jsonl'), 'utf8'),
  )
  assert.equal(records.rows.length, it['filter/kept'])
  for (const r of records.rows) assert.equal(r.principles?.length, 1)
})
