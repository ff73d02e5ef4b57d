import type { Graph } from '../graph.ts'
import { add, cast, mul, reciprocal, reduceMean, sqrt } from '../ops/index.ts'
import type { Tensor } from '../tensor.ts'

/**
 * Llama RMSNorm: weight · x / √(mean(x², last axis) + eps). As in Hugging Face, the statistics are
 * computed in float32 when x is float16 and the normalized value is cast back before the weight.
 */
export function rmsNorm(g: Graph, x: Tensor, weight: Tensor, eps: number): Tensor {
  return g.scope('rms_norm', () => {
    const xf = x.dtype === 'float16' ? cast(g, x, { to: 'float32' }) : x
    const meanSquare = reduceMean(g, mul(g, xf, xf), { axes: [-1], keepdims: true }) // (…, 1)
    const normed = mul(g, xf, reciprocal(g, sqrt(g, add(g, meanSquare, g.constant(eps, xf.dtype)))))
    return mul(g, weight, x.dtype === 'float16' ? cast(g, normed, { to: 'float16' }) : normed)
  })
}
