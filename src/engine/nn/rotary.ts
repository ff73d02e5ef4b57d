import type { Graph } from '../graph.ts'
import { add, cast, concat, cos, mul, rotateHalf, sin, unsqueeze } from '../ops/index.ts'
import type { FloatDType, Tensor } from '../tensor.ts'

/** Rotary position embedding, rotate-half convention: x · cos + rotate_half(x) · sin (cos/sin broadcast to x). */
export function applyRotary(g: Graph, x: Tensor, cosT: Tensor, sinT: Tensor): Tensor {
  return g.scope('rotary', () => add(g, mul(g, x, cosT), mul(g, rotateHalf(g, x), sinT)))
}

export interface RotaryOptions {
  headDim: number
  /** rope_theta */
  theta: number
  dtype: FloatDType
}

/**
 * cos and sin tables for int64 positions of shape (…, T): each (…, T, headDim), with the
 * frequencies inv_freq[i] = θ^(−2i/d) repeated over both halves (as Hugging Face's rotary embedding).
 */
export function rotaryCosSin(g: Graph, positions: Tensor, opts: RotaryOptions): { cos: Tensor; sin: Tensor } {
  return g.scope('rotary_emb', () => {
    const half = opts.headDim / 2
    const invFreq = Array.from({ length: half }, (_, i) => opts.theta ** (-(2 * i) / opts.headDim))
    const freq = g.constant(invFreq, 'float32', [half])
    const pos = unsqueeze(g, cast(g, positions, { to: 'float32' }), { axes: [-1] }) // (…, T, 1)
    const angles = mul(g, pos, freq) // (…, T, D/2)
    const emb = concat(g, angles, angles, { axis: -1 }) // (…, T, D)
    const toDType = (t: Tensor) => (opts.dtype === 'float32' ? t : cast(g, t, { to: opts.dtype }))
    return { cos: toDType(cos(g, emb)), sin: toDType(sin(g, emb)) }
  })
}
