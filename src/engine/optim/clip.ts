import { ValidationError } from '../../errors.ts'
import type { Graph, Tensor } from '../graph.ts'
import { add, div, min, mul, reduceSum, sqrt } from '../ops/index.ts'

/** √(Σ_i Σ g_i²): the L2 norm of all gradients taken as one vector. */
export function globalNorm(g: Graph, grads: readonly Tensor[]): Tensor {
  let total: Tensor | undefined
  for (const grad of grads) {
    const sq = reduceSum(g, mul(g, grad, grad))
    total = total === undefined ? sq : add(g, total, sq)
  }
  if (total === undefined) throw new ValidationError('globalNorm needs at least one gradient')
  return sqrt(g, total)
}

/**
 * Global-norm clipping as torch.nn.utils.clip_grad_norm_: coef = min(1, maxNorm / (norm + 1e-6)).
 * Returns the (unclipped) norm and the coefficient instead of scaled copies of every gradient: the
 * optimizer folds the coefficient into its per-step scalars, saving a pass over each gradient.
 */
export function clipByGlobalNorm(g: Graph, norm: Tensor, maxNorm: Tensor): Tensor {
  const dtype = norm.dtype
  const coef = div(g, maxNorm, add(g, norm, g.constant(1e-6, dtype)))
  return min(g, g.constant(1, dtype), coef)
}

/** The same coefficient in plain TypeScript, for optimizers that run outside the graph. */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6))
}
