import assert from 'node:assert/strict'
import { test } from 'node:test'
import { defaultVocabChunks } from '../../src/model/chunked-logps.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { randomWeights } from '../../src/model/tiny.ts'
import { readOnnxNodes } from '../helpers/onnx-nodes.ts'

test('large vocabularies get the chunked head by default, about 16k columns a chunk', () => {
  assert.equal(defaultVocabChunks(512), 1)
  assert.equal(defaultVocabChunks(32000), 1)
  assert.equal(defaultVocabChunks(128256), 8)
  assert.equal(defaultVocabChunks(151936), 10)
})

function model(vocab: number) {
  const parsed = parseLlamaConfig({
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: 8,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
  })
  assert.ok('config' in parsed)
  return { cfg: parsed.config, weights: randomWeights(parsed.config, 1) }
}

test('a scoring graph over a 40k vocabulary never builds the (rows, seq, vocab) logits', () => {
  for (const fusedMatMul of [true, false]) {
    const { graph } = buildScoringGraph(model(40000), { trainable: 'none', fusedMatMul })
    const chunked = graph.tape.filter((e) => e.op.type === 'ChunkedTargetLogps')
    assert.deepEqual(
      chunked.map((e) => e.attrs),
      [{ chunks: 3 }],
    )
    const nodes = readOnnxNodes(graph.serialize().model)
    // Each chunk's logits are 13334 or 13332 wide; no value of the full width exists.
    const widths = new Set(graph.tape.flatMap((e) => e.outputs.map((o) => o.shape.at(-1))))
    assert.ok(!widths.has(40000))
    // WebGPU graphs (fusedMatMul false) have no com.microsoft FusedMatMul kernel.
    if (!fusedMatMul) assert.ok(nodes.every((n) => n.opType !== 'FusedMatMul'))
  }
  const small = buildScoringGraph(model(512), { trainable: 'none' }).graph
  assert.ok(!small.tape.some((e) => e.op.type === 'ChunkedTargetLogps'))
})
