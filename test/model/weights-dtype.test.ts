import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { neg, reduceMean } from '../../src/engine/index.ts'
import { buildScoringGraph, type PolicyLoss } from '../../src/model/graphs.ts'
import { loadModel } from '../../src/model/load.ts'
import { Policy } from '../../src/model/policy.ts'
import {
  numberToBfloat16,
  readSafetensors,
  toFloatTensor,
  toStorage,
  writeSafetensors,
} from '../../src/model/safetensors.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'

let root: string
let modelDir: string
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'weights-dtype-'))
  modelDir = path.join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 3 })
})
after(() => rm(root, { recursive: true, force: true }))

const lora = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
const rows = [
  { prompt: [1, 2, 3, 4], response: [5, 6, 7, 8, 9] },
  { prompt: [10, 11], response: [12, 13, 14] },
]

for (const dtype of ['bfloat16', 'float16'] as const) {
  test(`a ${dtype} frozen base scores as float32 weights rounded to ${dtype}, in half the bytes`, async () => {
    const half = await Policy.load(modelDir, { lora, weightsDtype: dtype })
    const rounded = await loadModel(modelDir)
    for (const [k, t] of rounded.weights) rounded.weights.set(k, toFloatTensor(toStorage(t, dtype)))
    const full = new Policy(rounded, { lora })
    const [a, b] = [await half.logprobs(rows), await full.logprobs(rows)]
    for (const [i, s] of a.sum.entries())
      assert.ok(Math.abs(s - b.sum[i]) < 1e-4, `row ${i}: ${s} vs ${b.sum[i]}`)
    assert.ok(a.sum.every((s) => Number.isFinite(s) && s < 0))
    const adapterBytes = [...half.lora!.adapters.values()].reduce((n, t) => n + t.data.byteLength, 0)
    assert.equal((half.weightBytes() - adapterBytes) * 2, full.weightBytes() - adapterBytes)
    await half.dispose()
    await full.dispose()
  })
}

test('LoRA trains on a bfloat16 base; the reference stays the base; merging rounds into bfloat16', async () => {
  const policy = await Policy.load(modelDir, { lora, weightsDtype: 'bfloat16', seed: 1 })
  const base = await policy.logprobs(rows, 'reference')
  const first = await policy.trainStep({ rows }, { lr: 1e-2, loss: sft })
  let last = first
  for (let i = 0; i < 4; i++) last = await policy.trainStep({ rows }, { lr: 1e-2, loss: sft })
  assert.ok(Number.isFinite(first.loss) && last.loss < first.loss, `loss ${first.loss} -> ${last.loss}`)
  assert.deepEqual((await policy.logprobs(rows, 'reference')).sum, base.sum)
  const trained = await policy.logprobs(rows)
  await policy.freezeReference() // merges the adapters into the bfloat16 base
  const merged = await policy.logprobs(rows, 'reference')
  for (const [i, s] of merged.sum.entries())
    assert.ok(Math.abs(s - trained.sum[i]) < 0.05 * Math.abs(trained.sum[i]))
  assert.notDeepEqual(merged.sum, base.sum)
  await policy.dispose()
})

test('a BF16 file read as bfloat16 keeps its exact bits', async () => {
  const file = path.join(root, 'bf16.safetensors')
  const values = Float32Array.of(1, -2.5, Math.PI, 1e-3, 65504)
  await writeSafetensors(file, new Map([['w', { shape: [5], data: values }]]), { dtype: 'BF16' })
  const t = (await readSafetensors(file, undefined, 'bfloat16')).get('w')!
  assert.deepEqual(t, { shape: [5], dtype: 'bfloat16', data: Uint16Array.from(values, numberToBfloat16) })
})

test('a bfloat16 LM head in vocabulary chunks scores, trains and decodes as its float32 rounding, one chunk upcast at a time', async () => {
  const opts = { lora, vocabChunks: 3, seed: 2 }
  const half = await Policy.load(modelDir, { ...opts, weightsDtype: 'bfloat16' })
  const rounded = await loadModel(modelDir)
  for (const [k, t] of rounded.weights) rounded.weights.set(k, toFloatTensor(toStorage(t, 'bfloat16')))
  const full = new Policy(rounded, opts)
  const [a, b] = [await half.logprobs(rows), await full.logprobs(rows)]
  for (const [i, s] of a.sum.entries())
    assert.ok(Math.abs(s - b.sum[i]) < 1e-4, `row ${i}: ${s} vs ${b.sum[i]}`)
  const [sa, sb] = [
    await half.trainStep({ rows }, { lr: 1e-2, loss: sft }),
    await full.trainStep({ rows }, { lr: 1e-2, loss: sft }),
  ]
  assert.ok(Math.abs(sa.loss - sb.loss) < 1e-5 && Math.abs(sa.gradNorm - sb.gradNorm) < 1e-4 * sb.gradNorm)
  const gen = { maxNewTokens: 6, temperature: 0, topP: 1, topK: 0, seed: 1, stopTokenIds: [] }
  const [ga, gb] = [await half.generate(['a b c'], gen), await full.generate(['a b c'], gen)]
  assert.deepEqual(ga[0].tokens, gb[0].tokens)
  // No value of the whole head's size in float32: the embedding gathers its rows before upcasting.
  const cfg = half.config
  const graph = buildScoringGraph(
    { cfg, weights: half.model.weights, lora: half.lora },
    { trainable: 'adapters', frozen: 'inputs', vocabChunks: 3 },
  ).graph
  const whole = graph.tape
    .flatMap((e) => e.outputs)
    .filter((o) => o.dtype === 'float32' && o.shape[0] === cfg.vocab_size)
  assert.deepEqual(whole, [])
  await half.dispose()
  await full.dispose()
})
