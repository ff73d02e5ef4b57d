import type { Graph } from '../graph.ts'
import { mul, sigmoid } from '../ops/index.ts'
import type { Tensor } from '../tensor.ts'

/** SiLU (swish): x · σ(x). */
export function silu(g: Graph, x: Tensor): Tensor {
  return mul(g, x, sigmoid(g, x))
}
