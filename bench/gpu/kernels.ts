/**
 * Kernels per training step of the policy's WebGPU graphs, counted without a GPU: the live nodes
 * of each graph less the reshapes onnxruntime runs as views (on WebGPU a step is bound by
 * dispatching kernels, so this count is what the graph builders can change). One JSON line per
 * shape: the fused step (one micro-batch), the micro-step and update graphs (accumulation), and the
 * decode graph (one token per row, the KV cache on the device).
 * Widths are narrowed, keeping which weights share a shape (the update stacks same-shaped params):
 * head_dim 8, intermediate 24; layers, heads and vocabulary are the shape's.
 *
 *   node --import tsx bench/gpu/kernels.ts [--shapes qwen2.5-0.5b,10m,tiny]
 */
import { parseArgs } from 'node:util'
import { adamW, buildTrainStep, buildUpdateStep, type Graph, WEBGPU_STACK } from '../../src/engine/index.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { buildPolicyMicroStep, buildPolicyObjective } from '../../src/model/graphs.ts'
import { buildDecodeGraph } from '../../src/model/kv-cache.ts'
import { randomWeights, TINY_PRESETS, type TinyPreset } from '../../src/model/tiny.ts'
import { DPO, dpoLoss } from '../dpo-step.ts'
import { QWEN2_05B } from '../real-shapes.ts'

const { values: args } = parseArgs({
  options: { shapes: { type: 'string', default: 'qwen2.5-0.5b,10m,tiny' } },
})

/** Views, not kernels, on onnxruntime's WebGPU provider. */
const VIEWS = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Identity', 'Shape', 'Constant'])
const kernels = (g: Graph) => g.liveNodes().filter((n) => !VIEWS.has(n.opType)).length

function config(shape: string) {
  const base =
    shape === 'qwen2.5-0.5b'
      ? { ...QWEN2_05B, architectures: ['Qwen2ForCausalLM'] }
      : { ...TINY_PRESETS[shape as TinyPreset], model_type: 'llama', tie_word_embeddings: true }
  const heads = base.num_attention_heads
  const parsed = parseLlamaConfig({ ...base, hidden_size: 8 * heads, head_dim: 8, intermediate_size: 24 })
  if (!('config' in parsed)) throw new Error(`${shape}: ${parsed.problems.join('; ')}`)
  return parsed.config
}

for (const shape of args.shapes.split(',').filter(Boolean)) {
  const cfg = config(shape)
  const model = { cfg, weights: randomWeights(cfg, 1) }
  const bind = {
    trainable: 'all',
    frozen: 'inputs',
    fusedMatMul: false,
    loss: dpoLoss(DPO.rows / 2, DPO.beta),
  } as const
  const update = { optimizer: adamW(), clip: true, stackParams: WEBGPU_STACK }
  const objective = buildPolicyObjective(model, bind)
  const micro = buildPolicyMicroStep(model, bind)
  const line = {
    name: 'gpu/kernels',
    shape,
    layers: cfg.num_hidden_layers,
    fused_step: kernels(buildTrainStep(objective.g, { ...objective.spec, ...update }).graph),
    micro_step: kernels(micro.graph),
    update_step: kernels(buildUpdateStep({ ...update, params: micro.params, dtype: 'float32' }).graph),
    decode_token: kernels(buildDecodeGraph(model, { ...bind, cacheOnDevice: true })),
  }
  console.log(JSON.stringify(line))
}
