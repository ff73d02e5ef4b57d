import type { Graph } from '../graph.ts'
import { add, div, exp, mul, neg, sigmoid } from '../ops/index.ts'
import type { Tensor } from '../tensor.ts'

/**
 * SiLU (swish): x · σ(x). In float64 it is written x / (1 + e^−x): onnxruntime fuses x · σ(x)
 * into com.microsoft QuickGelu whenever σ(x) has no other reader (as in a recomputed forward), and
 * its CPU kernel has no double version.
 */
export function silu(g: Graph, x: Tensor): Tensor {
  if (x.dtype === 'float64') return div(g, x, add(g, g.constant(1, x.dtype), exp(g, neg(g, x))))
  return mul(g, x, sigmoid(g, x))
}
