import type { Graph } from '../graph.ts'
import {
  exp,
  gatherElements,
  log,
  logSoftmax,
  reduceMax,
  reduceSum,
  squeeze,
  stopGradient,
  sub,
  unsqueeze,
} from '../ops/index.ts'
import type { Tensor } from '../tensor.ts'

/**
 * log softmax as z − log Σ exp(z) with z = x − max(x): only ReduceMax/Sub/Exp/ReduceSum/Log, which
 * stay on the WebGPU provider (its LogSoftmax falls back to the CPU). The max is a constant shift,
 * so it is taken under stopGradient.
 */
export function logSoftmaxDecomposed(g: Graph, x: Tensor, axis = -1): Tensor {
  return g.scope('log_softmax', () => {
    const z = sub(g, x, stopGradient(g, reduceMax(g, x, { axes: [axis], keepdims: true })))
    return sub(g, z, log(g, reduceSum(g, exp(g, z), { axes: [axis], keepdims: true })))
  })
}

/**
 * log p(target) per position from logits (…, V) and int64 target ids (…): TRL's
 * selective_log_softmax. `decomposed` picks the WebGPU-friendly log-softmax.
 */
export function selectiveLogSoftmax(
  g: Graph,
  logits: Tensor,
  targetIds: Tensor,
  opts: { decomposed?: boolean } = {},
): Tensor {
  return g.scope('selective_log_softmax', () => {
    const logp = opts.decomposed ? logSoftmaxDecomposed(g, logits) : logSoftmax(g, logits, { axis: -1 }) // (…, V)
    const ids = unsqueeze(g, targetIds, { axes: [-1] }) // (…, 1)
    return squeeze(g, gatherElements(g, logp, ids, { axis: -1 }), { axes: [-1] }) // (…)
  })
}
