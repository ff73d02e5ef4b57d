/**
 * Causal self-attention of a decoder layer (HF `LlamaAttention`): q/k/v projections, optional
 * per-head q/k RMSNorm (qwen3), rotary embeddings in HF's rotate-half layout, grouped-query
 * attention, the additive mask, o_proj. The KV cache is explicit I/O: past keys/values come in,
 * the present ones (this call's tokens only, after RoPE) go out and the host appends them to its
 * cache, so a decode step never copies the whole cache out of the session; `cache` (past and
 * present joined) is what a cache kept on the device replaces itself with. (The engine's nn attention is causal-only; this one takes an
 * additive mask for padding, caches and sliding windows, and stacks query groups so K/V are neither
 * copied nor broadcast, which keeps their gradients free of a group reduction.)
 */
import {
  add,
  applyRotary,
  concat,
  fusedMatMul,
  type Graph,
  matMul,
  mul,
  reshape,
  softmax,
  type Tensor,
  transpose,
} from '../engine/index.ts'
import { linear, linears, type ModelContext, rmsNorm } from './layers.ts'

export interface KeyValue {
  /** (B, KV, S, D) */
  key: Tensor
  value: Tensor
}

export interface AttentionInputs {
  /** (B, 1, T, D): cos and sin of each position's rotation angles, repeated over both halves. */
  cos: Tensor
  sin: Tensor
  /** (B, 1, T, S): 0 where a query may attend a key, a large negative number elsewhere. */
  bias: Tensor
  past?: KeyValue
  /**
   * cos and sin times the score scale 1/√D, for the queries: the rotation then scales them, and
   * the scores and their gradients need no multiplication of their own (see queryRotation).
   */
  query?: { cos: Tensor; sin: Tensor }
}

/**
 * The query tables of AttentionInputs.query, for graphs without FusedMatMul (WebGPU), where the
 * score scale would be a kernel of its own in the forward pass and two in the backward, per layer;
 * two per graph here. FusedMatMul (CPU) scales inside the product.
 */
export function queryRotation(g: Graph, headDim: number, cos: Tensor, sin: Tensor): AttentionInputs['query'] {
  if (g.fusedMatMul) return undefined
  const scale = g.constant(1 / Math.sqrt(headDim), cos.dtype)
  return { cos: mul(g, cos, scale), sin: mul(g, sin, scale) }
}

/** A projection to heads: (B, T, n·D) -> (B, n, T, D), with the per-head norm when the model has one. */
function heads(ctx: ModelContext, projected: Tensor, n: number, norm?: string): Tensor {
  const { g, cfg } = ctx
  let h = reshape(g, projected, { shape: [0, 0, n, cfg.head_dim] }) // (B, T, n, D)
  if (norm) h = rmsNorm(ctx, h, norm)
  return transpose(g, h, { perm: [0, 2, 1, 3] }) // (B, n, T, D)
}

export function attention(
  ctx: ModelContext,
  x: Tensor,
  path: string,
  inputs: AttentionInputs,
): { out: Tensor; present: KeyValue; cache: KeyValue } {
  const { g, cfg } = ctx
  const nh = cfg.num_attention_heads
  const nkv = cfg.num_key_value_heads
  const d = cfg.head_dim
  const qkNorm = (name: string) => (cfg.qk_norm ? `${path}.${name}` : undefined)
  const projections = ['q_proj', 'k_proj', 'v_proj'].map((p) => `${path}.${p}`)
  const [qx, kx, vx] = linears(ctx, x, projections, `${path}.qkv_proj`)
  const q0 = heads(ctx, qx, nh, qkNorm('q_norm')) // (B, H, T, D)
  const k0 = heads(ctx, kx, nkv, qkNorm('k_norm')) // (B, KV, T, D)
  const v0 = heads(ctx, vx, nkv) // (B, KV, T, D)
  return g.withScopePath(path, () => {
    const q = applyRotary(g, q0, inputs.query?.cos ?? inputs.cos, inputs.query?.sin ?? inputs.sin)
    const kNew = applyRotary(g, k0, inputs.cos, inputs.sin)
    const key = inputs.past ? concat(g, inputs.past.key, kNew, { axis: 2 }) : kNew // (B, KV, S, D)
    const value = inputs.past ? concat(g, inputs.past.value, v0, { axis: 2 }) : v0 // (B, KV, S, D)
    // Grouped-query attention without repeating K/V: the G query heads of one KV head are stacked
    // along the query axis (HF's repeat_kv maps query head h to KV head h // G).
    const grouped = reshape(g, q, { shape: [0, nkv, -1, d] }) // (B, KV, G·T, D)
    const alpha = inputs.query ? 1 : 1 / Math.sqrt(d)
    const scores = fusedMatMul(g, grouped, key, { transB: true, alpha }) // (B, KV, G·T, S)
    const masked = add(g, reshape(g, scores, { shape: [0, nh, -1, 0] }), inputs.bias) // (B, H, T, S)
    const probs = reshape(g, softmax(g, masked, { axis: -1 }), { shape: [0, nkv, -1, 0] }) // (B, KV, G·T, S)
    const context = reshape(g, matMul(g, probs, value), { shape: [0, nh, -1, d] }) // (B, H, T, D)
    const merged = reshape(g, transpose(g, context, { perm: [0, 2, 1, 3] }), { shape: [0, 0, nh * d] }) // (B, T, H·D)
    return {
      out: linear(ctx, merged, `${path}.o_proj`),
      present: { key: kNew, value: v0 },
      cache: { key, value },
    }
  })
}
