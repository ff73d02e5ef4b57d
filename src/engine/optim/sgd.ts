import { add, mul, sub } from '../ops/index.ts'
import type { Optimizer, OptimizerGraph } from './optimizer.ts'
import { checkParams, outputNextState, scalarFeeds, scalarInputs, slotInput } from './params.ts'

export interface SgdConfig {
  momentum?: number
  /** L2 penalty added to the gradient (PyTorch SGD's weight_decay), for params whose `decay` is not false. */
  weightDecay?: number
  nesterov?: boolean
}

const INPUTS = ['lr', 'momentum', 'weight_decay'] as const

/**
 * SGD with momentum as in torch.optim.SGD (dampening 0):
 *   d ← g + wd·p;  buf ← μ·buf + d;  p ← p − lr·(nesterov ? d + μ·buf : buf)
 * A zero-initialised buffer reproduces PyTorch's first step (buf = d).
 */
export function sgdMomentum(config: SgdConfig = {}): Optimizer {
  const hp = { momentum: 0.9, weightDecay: 0, nesterov: false, ...config }
  return {
    kind: 'sgd',
    build(g, params, grads, gradScale, apply) {
      const dtype = checkParams(params, grads)
      const s = scalarInputs(g, dtype, INPUTS)
      const out: OptimizerGraph = { stateOutputs: {}, slots: [] }
      params.forEach((p, i) => {
        const buf = slotInput(g, dtype, 'momentum_buffer', p)
        const scaled = mul(g, gradScale, grads[i])
        const d = p.decay === false ? scaled : add(g, scaled, mul(g, s.weight_decay, p.tensor))
        const buf2 = add(g, mul(g, s.momentum, buf.tensor), d)
        const direction = hp.nesterov ? add(g, d, mul(g, s.momentum, buf2)) : buf2
        outputNextState(g, out, p, sub(g, p.tensor, mul(g, s.lr, direction)), [{ ...buf, next: buf2 }], apply)
      })
      return out
    },
    feeds(dtype, { lr }) {
      return scalarFeeds(dtype, INPUTS, { lr, momentum: hp.momentum, weight_decay: hp.weightDecay })
    },
  }
}
