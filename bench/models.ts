/**
 * Graphs measured by the engine benchmarks and the GPU check: a pre-norm transformer block
 * (Llama-style: RMSNorm, causal multi-head attention, SwiGLU MLP) and a two-layer GELU MLP, each
 * with a scalar loss, its trainable params and its matrix-product FLOPs.
 */
import {
  adamW,
  add,
  buildTrainStep,
  div,
  fusedMatMul,
  Graph,
  gelu,
  matMul,
  mul,
  type ParamDType,
  reduceMean,
  reshape,
  type StepPlan,
  sigmoid,
  softmax,
  sqrt,
  type Tensor,
  type TrainableParam,
  transpose,
} from '../src/engine/index.ts'
import {
  decoderTrainFlopsPerToken,
  type HostTensor,
  hostTensor,
  matMulFlops,
} from '../src/engine/runtime/index.ts'

export interface BenchModel {
  g: Graph
  loss: Tensor
  params: TrainableParam[]
  /** Inputs of one batch, seeded. */
  batch: Record<string, HostTensor>
  /** Initial param values, seeded. */
  init: Record<string, HostTensor>
  /** Matrix-product FLOPs of one forward and of one forward+backward pass. */
  forwardFlops: number
  trainFlops: number
  /** Tokens (rows) per batch. */
  tokens: number
}

/** One fused step graph: AdamW (weight decay 0.1) with gradient clipping, as the trainer steps. */
export function fusedAdamWPlan(m: BenchModel): StepPlan {
  return {
    fused: buildTrainStep(m.g, {
      loss: m.loss,
      params: m.params,
      optimizer: adamW({ weightDecay: 0.1 }),
      clip: true,
    }),
  }
}

export interface TransformerDims {
  batch: number
  seq: number
  hidden: number
  heads: number
  ffn: number
}

export const BENCH_TRANSFORMER: TransformerDims = { batch: 8, seq: 256, hidden: 512, heads: 8, ffn: 1408 }

function seeded(seed: number, n: number, scale: number): Float64Array {
  let s = seed >>> 0
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s / 2 ** 32 - 0.5) * 2 * scale
  })
}

function tensorOf(dtype: ParamDType, dims: number[], values: Float64Array): HostTensor {
  return dtype === 'float32'
    ? hostTensor('float32', dims, Float32Array.from(values))
    : hostTensor('float64', dims, Float64Array.from(values))
}

class Builder {
  readonly params: TrainableParam[] = []
  readonly init: Record<string, HostTensor> = {}
  private seed = 1

  constructor(
    readonly g: Graph,
    readonly dtype: ParamDType,
  ) {}

  param(name: string, dims: number[], scale: number, decay = true, fill?: number): Tensor {
    const tensor = this.g.input(name, this.dtype, dims)
    const n = dims.reduce((a, b) => a * b, 1)
    const values = fill === undefined ? seeded(this.seed++, n, scale) : new Float64Array(n).fill(fill)
    this.init[name] = tensorOf(this.dtype, dims, values)
    this.params.push({ name, tensor, decay })
    return tensor
  }

  scalar(v: number): Tensor {
    return this.g.constant(v, this.dtype)
  }
}

/** x · w / √(mean(x²) + ε) over the last axis. */
function rmsNormOf(b: Builder, x: Tensor, w: Tensor): Tensor {
  const { g } = b
  const ms = reduceMean(g, mul(g, x, x), { axes: [-1], keepdims: true })
  return mul(g, div(g, x, sqrt(g, add(g, ms, b.scalar(1e-6)))), w)
}

/** Additive causal mask (0 on and below the diagonal, −1e9 above), shape (S, S). */
function causalMaskConstant(b: Builder, seq: number): Tensor {
  const m = new Float64Array(seq * seq)
  for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) m[i * seq + j] = -1e9
  return b.g.constant(b.dtype === 'float32' ? Float32Array.from(m) : m, b.dtype, [seq, seq])
}

/** One pre-norm decoder block; loss = mean(y²) of its output. */
export function transformerBlock(d: TransformerDims, dtype: ParamDType = 'float32'): BenchModel {
  const g = new Graph({ name: 'transformer_block' })
  const b = new Builder(g, dtype)
  const { batch: B, seq: S, hidden: H, heads: NH, ffn: F } = d
  const hd = H / NH
  const rows = B * S
  const x = g.input('x', dtype, [rows, H]) // (B·S, H)
  const proj = (name: string, inF: number, outF: number) => b.param(name, [inF, outF], 1 / Math.sqrt(inF))

  const attnNorm = b.param('self_attn_norm.weight', [H], 0, false, 1)
  const h = rmsNormOf(b, x, attnNorm)
  const heads = (t: Tensor) => transpose(g, reshape(g, t, { shape: [B, S, NH, hd] }), { perm: [0, 2, 1, 3] }) // (B, NH, S, hd)
  const q = heads(matMul(g, h, proj('self_attn.q_proj.weight', H, H)))
  const k = heads(matMul(g, h, proj('self_attn.k_proj.weight', H, H)))
  const v = heads(matMul(g, h, proj('self_attn.v_proj.weight', H, H)))
  const scores = add(
    g,
    fusedMatMul(g, q, k, { transB: true, alpha: 1 / Math.sqrt(hd) }),
    causalMaskConstant(b, S),
  ) // (B, NH, S, S)
  const ctx = matMul(g, softmax(g, scores, { axis: -1 }), v) // (B, NH, S, hd)
  const merged = reshape(g, transpose(g, ctx, { perm: [0, 2, 1, 3] }), { shape: [rows, H] }) // (B·S, H)
  const x1 = add(g, x, matMul(g, merged, proj('self_attn.o_proj.weight', H, H)))

  const mlpNorm = b.param('mlp_norm.weight', [H], 0, false, 1)
  const h2 = rmsNormOf(b, x1, mlpNorm)
  const gate = matMul(g, h2, proj('mlp.gate_proj.weight', H, F))
  const up = matMul(g, h2, proj('mlp.up_proj.weight', H, F))
  const act = mul(g, mul(g, gate, sigmoid(g, gate)), up) // SiLU(gate) · up
  const y = add(g, x1, matMul(g, act, proj('mlp.down_proj.weight', F, H)))
  const loss = reduceMean(g, mul(g, y, y))

  const forwardFlops =
    4 * matMulFlops(rows, H, H) + 3 * matMulFlops(rows, H, F) + 2 * matMulFlops(S, hd, S, B * NH)
  return {
    g,
    loss,
    params: b.params,
    init: b.init,
    batch: { x: tensorOf(dtype, [rows, H], seeded(999, rows * H, 1)) },
    forwardFlops,
    // PaLM's 6N + 12·L·H·Q·T per token: the same count as 3 × forwardFlops.
    trainFlops:
      rows *
      decoderTrainFlopsPerToken({
        params: 4 * H * H + 3 * H * F,
        layers: 1,
        heads: NH,
        headDim: hd,
        seqLen: S,
      }),
    tokens: rows,
  }
}

export interface MlpDims {
  batch: number
  inFeatures: number
  hidden: number
}

export const BENCH_MLP: MlpDims = { batch: 512, inFeatures: 1024, hidden: 4096 }

/** y = W2·gelu(W1·x + b1) + b2; loss = mean((y − t)²). */
export function mlp(d: MlpDims, dtype: ParamDType = 'float32'): BenchModel {
  const g = new Graph({ name: 'mlp' })
  const b = new Builder(g, dtype)
  const { batch: N, inFeatures: D, hidden: Hd } = d
  const x = g.input('x', dtype, [N, D])
  const t = g.input('t', dtype, [N, D])
  const w1 = b.param('fc1.weight', [D, Hd], 1 / Math.sqrt(D))
  const b1 = b.param('fc1.bias', [Hd], 0, false, 0)
  const w2 = b.param('fc2.weight', [Hd, D], 1 / Math.sqrt(Hd))
  const b2 = b.param('fc2.bias', [D], 0, false, 0)
  const y = add(g, matMul(g, gelu(g, add(g, matMul(g, x, w1), b1)), w2), b2)
  const err = add(g, y, mul(g, t, b.scalar(-1)))
  const loss = reduceMean(g, mul(g, err, err))
  const layer = matMulFlops(N, D, Hd)
  return {
    g,
    loss,
    params: b.params,
    init: b.init,
    batch: {
      x: tensorOf(dtype, [N, D], seeded(7, N * D, 1)),
      t: tensorOf(dtype, [N, D], seeded(8, N * D, 1)),
    },
    forwardFlops: 2 * layer,
    // The input needs no gradient: fc1 adds only its weight gradient, fc2 its weight and input gradients.
    trainFlops: 2 * layer + 3 * layer,
    tokens: N,
  }
}
