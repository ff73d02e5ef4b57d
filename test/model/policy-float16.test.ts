import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { maxRelDiff } from '../../bench/compare.ts'
import {
  createGraphSession,
  type HostTensor,
  neg,
  type Provider,
  reduceMean,
  STEP_INPUTS,
} from '../../src/engine/index.ts'
import { INPUT, packRows, scoringFeeds } from '../../src/model/batch.ts'
import type { ChatMessage } from '../../src/model/chat-template.ts'
import {
  buildPolicyMicroStep,
  buildPolicyStepGraph,
  buildScoringGraph,
  type PolicyLoss,
} from '../../src/model/graphs.ts'
import { loadModel } from '../../src/model/load.ts'
import { Policy, type PolicyOptions } from '../../src/model/policy.ts'
import type { Precision } from '../../src/model/precision.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'
import { itPassesUnderSoftwareVulkan, webgpuTestMode } from '../helpers/providers.ts'

/**
 * Mixed precision (precision: 'float16') against float32 on the tiny model. Stated tolerances, all
 * relative (maxRelDiff: max |a − b| / max |b|; gradients also as one vector, ‖a − b‖ / ‖b‖):
 *   log-probs of the untrained model 1e-3; gradients 1e-2 as one vector and per tensor 2e-2;
 *   after four AdamW steps on WebGPU losses 2e-3, gradient norms 2e-2, log-probs 5e-3.
 * Measured on Mesa's software Vulkan driver and the CPU provider: see README ("GPU").
 */
const { skip, rerun } = await webgpuTestMode('float16 policy tests')

const question: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }]
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
const lora = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }

/** ‖a − b‖ / ‖b‖ over several tensors taken as one vector (b the reference). */
function relL2(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  let diff = 0
  let norm = 0
  b.forEach((t, j) => {
    for (let i = 0; i < t.length; i++) {
      diff += (a[j][i] - t[i]) ** 2
      norm += t[i] ** 2
    }
  })
  return Math.sqrt(diff / norm)
}

let root: string
let modelDir: string
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'policy-float16-'))
  modelDir = path.join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 5 })
})
after(() => rm(root, { recursive: true, force: true }))

describe('float16 graphs', () => {
  it('cast the float32 weights and decoder inputs to float16, and keep the log-softmax, the loss and the gradients float32', async () => {
    const m = await loadModel(modelDir, 'float32')
    const built = buildPolicyMicroStep(
      { cfg: m.config, weights: m.weights },
      { trainable: 'all', frozen: 'inputs', fusedMatMul: false, precision: 'float16', loss: sft },
    )
    const tape = built.graph.tape
    // Float outputs only: index and shape computations (int64) have no precision to choose.
    const outputDtypes = (type: string, where: 'decoder' | 'logps' | 'all' = 'all') =>
      new Set(
        tape
          .filter((e) => e.op.type === type && e.outputs[0].dtype !== 'int64')
          .filter((e) => where === 'all' || (e.scope === 'logps') === (where === 'logps'))
          .map((e) => e.outputs[0].dtype),
      )
    for (const type of ['MatMul', 'Softmax', 'Silu', 'Gather']) {
      assert.deepEqual(outputDtypes(type, 'decoder'), new Set(['float16']), `${type} outputs`)
    }
    // The per-sequence sums of the float32 token log-probs stay float32.
    assert.deepEqual(outputDtypes('MatMul', 'logps'), new Set(['float32']))
    // Every weight is a float32 input read through one Cast to float16 in the forward pass.
    const forwardCasts = tape.filter((e) => e.op.type === 'Cast' && !e.scope.startsWith('grad'))
    for (const key of m.weights.keys()) {
      const reads = forwardCasts.filter((e) => e.inputs[0]?.name === key)
      assert.equal(reads.length, 1, `${key} is cast once`)
      assert.equal(reads[0].inputs[0]!.dtype, 'float32')
      assert.equal(reads[0].outputs[0].dtype, 'float16')
    }
    const castFrom = (input: string) => forwardCasts.some((e) => e.inputs[0]?.name === input)
    assert.ok(castFrom(INPUT.cos) && castFrom(INPUT.sin), 'rotary tables are cast')
    // The additive mask is clamped to a finite float16 value before its cast (-1e9 would be -inf).
    const clamp = tape.find((e) => e.op.type === 'Max' && e.inputs[0]?.name === INPUT.bias)
    assert.ok(clamp && castFrom(clamp.outputs[0].name), 'the mask is clamped, then cast')
    // The vocabulary log-softmax (decomposed for WebGPU: ReduceMax, Exp, ReduceSum, Log) is float32.
    assert.deepEqual(outputDtypes('Log'), new Set(['float32']))
    assert.deepEqual(outputDtypes('Exp'), new Set(['float32']))
    const io = await createGraphSession(built.graph.serialize(), { provider: 'cpu' })
    try {
      const inputs = new Map(io.inputs.map((s) => [s.name, s.dtype]))
      assert.equal(inputs.get(STEP_INPUTS.lossScale), 'float32')
      for (const key of m.weights.keys()) assert.equal(inputs.get(key), 'float32', key)
      for (const o of io.outputs) assert.equal(o.dtype, 'float32', `output ${o.name}`)
    } finally {
      await io.release()
    }
  })

  it('score and differentiate like the float32 graphs on the CPU provider', async () => {
    const m = await loadModel(modelDir, 'float32')
    const model = { cfg: m.config, weights: m.weights }
    const rows = [
      { prompt: [1, 5, 9, 33, 2], response: [7, 8, 100, 3] },
      { prompt: [4, 6], response: [11, 12, 13] },
    ]
    // Left padding: the first row's padding slots see no key at all (their masks must stay finite).
    const feeds = scoringFeeds(m.config, packRows(rows, { padding: 'left', padId: 0 }), 'float32')
    const weights: Record<string, HostTensor> = {}
    for (const [k, w] of m.weights)
      weights[k] = { dtype: 'float32', dims: w.shape, data: w.data as Float32Array }
    const run = async (precision: Precision) => {
      const scoring = await createGraphSession(
        buildScoringGraph(model, { trainable: 'none', precision }).graph.serialize(),
        { provider: 'cpu' },
      )
      const step = buildPolicyStepGraph(model, { trainable: 'all', precision, loss: sft })
      const grads = await createGraphSession(step.graph.serialize(), { provider: 'cpu' })
      try {
        const logps = (await scoring.run(feeds))['logps.sum'].data as Float32Array
        const out = await grads.run({ ...feeds, ...weights })
        return { logps, grads: [...m.weights.keys()].map((k) => out[`grad.${k}`].data as Float32Array) }
      } finally {
        await scoring.release()
        await grads.release()
      }
    }
    const single = await run('float32')
    const half = await run('float16')
    assert.ok(maxRelDiff(half.logps, single.logps) < 1e-3, `log-probs ${half.logps} vs ${single.logps}`)
    const e = relL2(half.grads, single.grads)
    assert.ok(e < 1e-2, `gradients differ by ${e}`)
    half.grads.forEach((g, i) => {
      const d = maxRelDiff(g, single.grads[i])
      assert.ok(d < 2e-2, `gradient ${[...m.weights.keys()][i]} differs by ${d}`)
    })
  })

  it('are refused off the WebGPU provider', async () => {
    await assert.rejects(Policy.load(modelDir, { provider: 'cpu', precision: 'float16' }), {
      code: 'validation_failed',
      message: /precision float16 runs on the webgpu provider only; this policy runs on cpu/,
    })
  })
})

/** Four SFT steps (moments after the first: its gradient), then the losses, norms and log-probs. */
async function train(precision: Precision, withLora: boolean, extra: PolicyOptions = {}) {
  const policy = await Policy.load(modelDir, {
    provider: 'webgpu' as Provider,
    seed: 3,
    precision,
    lora: withLora ? lora : undefined,
    ...extra,
  })
  try {
    const rows = [
      policy.tokenizeExchange(question, 'Paris.'),
      policy.tokenizeExchange(question, 'Lyon is not it!'),
    ]
    const before = (await policy.logprobs(rows)).sum
    const steps = [await policy.trainStep({ rows }, { lr: 1e-2, loss: sft, maxGradNorm: 1 })]
    const firstState = (await policy.exportState()).tensors
    for (let i = 0; i < 3; i++)
      steps.push(await policy.trainStep({ rows }, { lr: 1e-2, loss: sft, maxGradNorm: 1 }))
    const moments = [...firstState]
      .filter(([k]) => k.startsWith('optim.exp_avg.'))
      .sort(([a], [b]) => a.localeCompare(b))
    return {
      before,
      after: (await policy.logprobs(rows)).sum,
      losses: steps.map((s) => s.loss),
      norms: steps.map((s) => s.gradNorm),
      metrics: steps.map((s) => s.metrics),
      firstGradient: moments.map(([, t]) => t.data),
    }
  } finally {
    await policy.dispose()
  }
}

describe('Policy in float16 on WebGPU', { skip, timeout: 300_000 }, () => {
  if (rerun) return itPassesUnderSoftwareVulkan(fileURLToPath(import.meta.url), 6)

  for (const withLora of [false, true]) {
    it(`scores and trains like float32 within the stated tolerances (${withLora ? 'LoRA' : 'full fine-tuning'})`, async () => {
      const single = await train('float32', withLora)
      const half = await train('float16', withLora)
      const report = (what: string, a: number[], b: number[]) => `${what}: ${a} vs ${b}`
      assert.ok(
        maxRelDiff(half.before, single.before) < 1e-3,
        report('log-probs', half.before, single.before),
      )
      // The first AdamW moment after one step is (1 − β1) · the clipped gradient.
      const e = relL2(half.firstGradient, single.firstGradient)
      assert.ok(e < 1e-2, `first-step gradients differ by ${e}`)
      assert.ok(maxRelDiff(half.losses, single.losses) < 2e-3, report('losses', half.losses, single.losses))
      assert.ok(
        maxRelDiff(half.norms, single.norms) < 2e-2,
        report('gradient norms', half.norms, single.norms),
      )
      assert.ok(
        maxRelDiff(half.after, single.after) < 5e-3,
        report('trained log-probs', half.after, single.after),
      )
      assert.ok(half.losses[3] < half.losses[0] - 0.1, `it learns: ${half.losses}`)
      for (const m of half.metrics) assert.deepEqual(m, { 'amp/loss_scale': 2 ** 16, 'amp/skipped': 0 })
      assert.deepEqual(single.metrics[0], {}, 'float32 steps report no loss scale')
    })
  }

  it('skips a step whose float16 gradients overflow, backs the scale off, and then steps as float32 does first', async () => {
    // 2^40 overflows float16 in the backward pass; one back-off brings it to 2^12.
    const half = await train('float16', false, { lossScale: { initial: 2 ** 40, backoffFactor: 2 ** -28 } })
    const single = await train('float32', false)
    assert.ok(!Number.isFinite(half.norms[0]), `overflowed: gradient norm ${half.norms[0]}`)
    assert.deepEqual(half.metrics[0], { 'amp/loss_scale': 2 ** 40, 'amp/skipped': 1 })
    assert.deepEqual(half.metrics[1], { 'amp/loss_scale': 2 ** 12, 'amp/skipped': 0 })
    // Nothing moved: the moments are zero and the next step sees the same weights and loss.
    for (const m of half.firstGradient) assert.ok(m.every((x) => x === 0))
    assert.equal(half.losses[1], half.losses[0])
    // The first applied step is AdamW's first (bias correction counts applied steps only).
    assert.ok(
      maxRelDiff(half.losses.slice(1), single.losses.slice(0, 3)) < 2e-3,
      `${half.losses} vs ${single.losses}`,
    )
    assert.ok(
      maxRelDiff(half.norms.slice(1), single.norms.slice(0, 3)) < 2e-2,
      `${half.norms} vs ${single.norms}`,
    )
  })
})
