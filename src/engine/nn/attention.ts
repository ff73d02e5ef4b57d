import { ShapeError } from '../../errors.ts'
import type { Graph } from '../graph.ts'
import { fusedMatMul, matMul, reshape, softmax, unsqueeze } from '../ops/index.ts'
import { formatShape, type Tensor } from '../tensor.ts'
import { applyCausalMask } from './mask.ts'

export interface AttentionOptions {
  /** Mask future keys (default true). */
  causal?: boolean
  /** Score scale; 1/√D by default. */
  scale?: number
}

/**
 * Scaled dot-product attention with grouped-query heads: q (B, H, T, D), k and v (B, Hkv, S, D) with
 * H a multiple of Hkv. Query heads are grouped as (B, Hkv, H/Hkv, T, D) so that each key/value head
 * broadcasts over its group inside MatMul instead of being copied; grad() sums the group back.
 */
export function attention(g: Graph, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const [, h, , d] = q.shape
  const hkv = k.shape[1]
  if (
    q.shape.length !== 4 ||
    k.shape.length !== 4 ||
    v.shape.length !== 4 ||
    typeof h !== 'number' ||
    typeof hkv !== 'number' ||
    typeof d !== 'number' ||
    h % hkv !== 0
  ) {
    throw new ShapeError(
      `${g.nodeLabel('attention')}: q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}: expected (B, H, T, D) and (B, Hkv, S, D) with static heads, H a multiple of Hkv`,
    )
  }
  const groups = h / hkv
  const scale = opts.scale ?? 1 / Math.sqrt(d)
  const qg = groups === 1 ? q : reshape(g, q, { shape: [0, hkv, groups, -1, d] }) // (B, Hkv, G, T, D)
  const kg = groups === 1 ? k : unsqueeze(g, k, { axes: [2] }) // (B, Hkv, 1, S, D)
  const vg = groups === 1 ? v : unsqueeze(g, v, { axes: [2] }) // (B, Hkv, 1, S, D)
  let scores = fusedMatMul(g, qg, kg, { transB: true, alpha: scale }) // (B, Hkv, G, T, S)
  if (opts.causal ?? true) scores = applyCausalMask(g, scores)
  const out = matMul(g, softmax(g, scores, { axis: -1 }), vg) // (B, Hkv, G, T, D)
  return groups === 1 ? out : reshape(g, out, { shape: [0, h, -1, d] }) // (B, H, T, D)
}
