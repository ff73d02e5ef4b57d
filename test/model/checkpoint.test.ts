import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import ort from 'onnxruntime-node'
import { grad, mul, reduceSum } from '../../src/engine/index.ts'
import { packRows, scoringFeeds } from '../../src/model/batch.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { randomWeights } from '../../src/model/tiny.ts'
import { type OnnxNode, readOnnxNodes } from '../helpers/onnx-nodes.ts'
import { openGraph } from '../helpers/run-graph.ts'

// qwen3: per-head q/k norms too, so every op kind of a decoder layer is recomputed.
const parsed = parseLlamaConfig({
  model_type: 'qwen3',
  vocab_size: 61,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  tie_word_embeddings: false,
})
assert.ok('config' in parsed)
const cfg = parsed.config
const weights = randomWeights(cfg, 7, 0.2)
const rows = [
  { prompt: [1, 2, 3], response: [4, 5, 6, 7] },
  { prompt: [8, 9], response: [10, 11] },
  { prompt: [12, 13, 14, 15, 16], response: [17, 18, 19, 20, 21] },
]

/** Σ c_b · logps.sum_b with every weight's gradient as outputs `grad.<key>`. */
function lossGraph(checkpoint: boolean) {
  const {
    graph: g,
    logps,
    params,
  } = buildScoringGraph({ cfg, weights }, { trainable: 'all', sequences: 3, outputs: false, checkpoint })
  const loss = reduceSum(g, mul(g, logps.sum, g.constant(Float32Array.of(0.7, -1.3, 0.4), 'float32', [3])))
  g.output(loss, 'loss')
  const keys = [...params.keys()]
  grad(g, loss, [...params.values()]).forEach((t, i) => {
    g.output(t!, `grad.${keys[i]}`)
  })
  return { g, keys }
}

async function gradients(checkpoint: boolean) {
  const { g, keys } = lossGraph(checkpoint)
  const feeds: Record<string, { data: Float32Array | BigInt64Array | Int32Array; dims: number[] }> = {}
  for (const [k, t] of Object.entries(
    scoringFeeds(cfg, packRows(rows, { padding: 'left', padId: 0 }), 'float32'),
  )) {
    feeds[k] = { data: t.data as Float32Array, dims: [...t.dims] }
  }
  for (const [k, t] of weights) feeds[k] = { data: t.data, dims: t.shape }
  const out = await (await openGraph(g))(feeds)
  return new Map(keys.map((k) => [k, out[`grad.${k}`].data as Float32Array]))
}

test('checkpointed decoder layers give every weight gradient of the stored forward, bit for bit (float32)', async () => {
  const plain = await gradients(false)
  const recomputed = await gradients(true)
  assert.equal(recomputed.size, plain.size)
  // The recomputed copy runs the same kernels on the same values (x + 0 = x), so nothing differs.
  for (const [k, want] of plain) {
    assert.ok(
      want.some((v) => v !== 0),
      `${k}: zero gradient`,
    )
    assert.deepEqual(recomputed.get(k), want, k)
  }
})

/** The decoder layer a node belongs to ('model.layers.3.mlp/…' -> 3), or undefined. */
const layerOf = (name: string) => /^model\.layers\.(\d+)[./]/.exec(name)?.[1]

/**
 * Backward nodes ('grad/…') that read a value a forward node of a decoder layer produced, other
 * than a layer's output (what the next layer or the final norm reads): with checkpointing there
 * must be none (they read the recomputed copy), so the forward's layer intermediates can be freed
 * as soon as the forward has used them.
 */
function backwardReadsOfLayerActivations(nodes: readonly OnnxNode[]): string[] {
  const producer = new Map<string, string>()
  for (const n of nodes) if (layerOf(n.name) !== undefined) for (const o of n.outputs) producer.set(o, n.name)
  const isForward = (n: OnnxNode) => !n.name.startsWith('grad/') && !n.name.startsWith('recompute/')
  const layerOutputs = new Set(
    nodes
      .filter(isForward)
      .flatMap((n) =>
        n.inputs.filter((i) => producer.has(i) && layerOf(producer.get(i)!) !== layerOf(n.name)),
      ),
  )
  return nodes
    .filter((n) => n.name.startsWith('grad/'))
    .flatMap((n) =>
      n.inputs.filter((i) => producer.has(i) && !layerOutputs.has(i)).map((i) => `${n.name} reads ${i}`),
    )
}

/** Forward nodes that read a recomputed value: what a merge of the two copies would leave behind. */
function forwardReadsOfRecomputed(nodes: readonly OnnxNode[]): string[] {
  const recomputed = new Set(nodes.filter((n) => n.name.startsWith('recompute/')).flatMap((n) => n.outputs))
  return nodes
    .filter((n) => !n.name.startsWith('grad/') && !n.name.startsWith('recompute/'))
    .flatMap((n) => n.inputs.filter((i) => recomputed.has(i)).map((i) => `${n.name} reads ${i}`))
}

test("backward reads no layer activation of the forward, before and after onnxruntime's graph optimizations", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ckpt-'))
  try {
    for (const checkpoint of [false, true]) {
      const { model, externalData } = lossGraph(checkpoint).g.serialize()
      const file = path.join(dir, `optimized-${checkpoint}.onnx`)
      // The options of createGraphSession, plus a dump of the graph that actually runs.
      const session = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: 1,
        logSeverityLevel: 3,
        externalData: externalData.map((e) => ({ path: e.path, data: e.data })),
        optimizedModelFilePath: file,
      })
      await session.release()
      const optimized = readOnnxNodes(await readFile(file))
      const reads = backwardReadsOfLayerActivations(optimized)
      if (checkpoint) {
        assert.deepEqual(backwardReadsOfLayerActivations(readOnnxNodes(model)), [])
        assert.deepEqual(reads, [])
        assert.deepEqual(forwardReadsOfRecomputed(optimized), [], 'the two copies were merged')
        assert.ok(optimized.some((n) => n.name.startsWith('recompute/model.layers.2.self_attn')))
      } else {
        // The check can fail: without checkpointing the backward reads the stored activations.
        assert.ok(reads.length > 10, `expected stored activations to be read, got ${reads.length}`)
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
