import assert from 'node:assert/strict'
import { test } from 'node:test'
import { add, mul, reduceSum } from '../../src/engine/index.ts'
import { packRows, scoringFeeds } from '../../src/model/batch.ts'
import { buildScoringGraph, type Trainable } from '../../src/model/graphs.ts'
import { initAdapters } from '../../src/model/lora.ts'
import { Random } from '../../src/model/random.ts'
import { randomWeights } from '../../src/model/tiny.ts'
import { assertAllClose } from '../helpers/all-close.ts'
import { type DirectionalCheck, directionalCheck } from '../helpers/directional-gradcheck.ts'
import { runGraph } from '../helpers/run-graph.ts'
import { tinyConfig } from '../helpers/tiny-qwen2.ts'

const cfg = tinyConfig()

const ROWS = [
  { prompt: [1, 2, 3], response: [4, 5, 6, 7] },
  { prompt: [8, 9], response: [10, 11] },
  { prompt: [12, 13, 14, 15, 16], response: [17, 18, 19, 20, 21] },
]

/**
 * The directional check on f = Σ_b c_b · sum_b + d_b · mean_b of the response log-probs of a
 * left-padded batch, w.r.t. all weights or the LoRA adapters.
 */
async function scoringCheck(
  trainable: Exclude<Trainable, 'none'>,
  checkpoint = false,
  fusedMatMul = true,
): Promise<DirectionalCheck> {
  const weights = randomWeights(cfg, 11, 0.3)
  const spec = { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'] }
  const adapters = initAdapters(cfg, spec, 5)
  const rng = new Random(3)
  // Non-zero B, so gradients reach A as well.
  for (const [k, t] of adapters) if (k.includes('lora_B')) t.data.set(t.data.map(() => rng.normal() * 0.3))
  const model = { cfg, weights, lora: trainable === 'adapters' ? { spec, adapters } : undefined }
  const {
    graph: g,
    logps,
    params,
  } = buildScoringGraph(model, {
    trainable,
    dtype: 'float64',
    sequences: 3,
    outputs: false,
    checkpoint,
    fusedMatMul,
  })
  const c = g.constant(Float64Array.of(0.7, -1.3, 0.4), 'float64', [3])
  const d = g.constant(Float64Array.of(-0.5, 0.9, 1.1), 'float64', [3])
  const loss = reduceSum(g, add(g, mul(g, logps.sum, c), mul(g, logps.mean, d)))
  const feeds = scoringFeeds(cfg, packRows(ROWS, { padding: 'left', padId: 0 }), 'float64')
  const values = trainable === 'all' ? weights : adapters
  return directionalCheck(g, loss, params, { name: 'gradcheck', feeds, values, rng })
}

// fusedMatMul: false builds the graphs as WebGPU runs them (q, k and v in one product, the score
// scale on the queries' rotation, halves swapped by a Gather).
for (const [trainable, checkpoint, fusedMatMul] of [
  ['all', false, true],
  ['adapters', false, true],
  ['all', true, true],
  ['adapters', true, true],
  ['all', false, false],
  ['adapters', true, false],
] as const) {
  const what = trainable === 'all' ? 'all weights' : 'LoRA adapters'
  const how = `${checkpoint ? ', decoder layers recomputed' : ''}${fusedMatMul ? '' : ', as WebGPU builds it'}`
  test(`float64 finite differences match the sequence log-prob gradient w.r.t. ${what}${how}`, async () => {
    const { analytic, numeric } = await scoringCheck(trainable, checkpoint, fusedMatMul)
    const rel = Math.abs(analytic - numeric) / Math.abs(numeric)
    assert.ok(Math.abs(numeric) > 1e-3, `the check needs a non-trivial derivative, got ${numeric}`)
    // Central differences in float64 with eps 1e-5: truncation O(eps²) and rounding O(1e-16/eps) both ≪ 1e-6.
    assert.ok(rel < 1e-6, `analytic ${analytic} vs numeric ${numeric}: relative error ${rel}`)
  })
}

test('the scoring graph as WebGPU builds it gives the log-probs of the one the CPU runs (float64)', async () => {
  const spec = { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'] }
  const adapters = initAdapters(cfg, spec, 5)
  const rng = new Random(4)
  for (const [k, t] of adapters) if (k.includes('lora_B')) t.data.set(t.data.map(() => rng.normal() * 0.3))
  const model = { cfg, weights: randomWeights(cfg, 11, 0.3), lora: { spec, adapters } }
  const feeds = scoringFeeds(cfg, packRows(ROWS, { padding: 'left', padId: 0 }), 'float64')
  const [cpu, webgpu] = await Promise.all(
    [true, false].map((fusedMatMul) =>
      runGraph(buildScoringGraph(model, { trainable: 'none', dtype: 'float64', fusedMatMul }).graph, feeds),
    ),
  )
  for (const key of ['logps.sum', 'logps.mean']) {
    assertAllClose(webgpu[key].data as Float64Array, cpu[key].data as Float64Array, {
      rtol: 1e-12,
      what: key,
    })
  }
})
