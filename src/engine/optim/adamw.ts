import { add, div, mul, pow, sqrt, sub } from '../ops/index.ts'
import type { Optimizer, OptimizerGraph } from './optimizer.ts'
import { checkParams, outputNextState, scalarFeeds, scalarInputs, slotInput } from './params.ts'

export interface AdamWConfig {
  beta1?: number
  beta2?: number
  eps?: number
  /** Decoupled weight decay (Loshchilov & Hutter), applied to params whose `decay` is not false. */
  weightDecay?: number
}

const INPUTS = ['lr', 'step', 'beta1', 'beta2', 'eps', 'weight_decay'] as const

/**
 * AdamW as in PyTorch's torch.optim.AdamW (bias-corrected, decoupled decay):
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − (lr/bc1) · m / (√v/√bc2 + ε),  bc_i = 1 − β_i^step
 * written as p·(1−lr·wd) − (lr·√bc2/bc1) · m / (√v + ε·√bc2) so that every per-element op is one
 * pass over a tensor and all the scalar algebra happens once per step.
 */
export function adamW(config: AdamWConfig = {}): Optimizer {
  const hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...config }
  return {
    kind: 'adamw',
    build(g, params, grads, gradScale, apply) {
      const dtype = checkParams(params, grads)
      const s = scalarInputs(g, dtype, INPUTS)
      const one = g.constant(1, dtype)
      const bc1 = sub(g, one, pow(g, s.beta1, s.step))
      const sqrtBc2 = sqrt(g, sub(g, one, pow(g, s.beta2, s.step)))
      const stepSize = div(g, mul(g, s.lr, sqrtBc2), bc1)
      const epsHat = mul(g, s.eps, sqrtBc2)
      const decayFactor = sub(g, one, mul(g, s.lr, s.weight_decay))
      const gradCoef1 = mul(g, sub(g, one, s.beta1), gradScale)
      const gradCoef2 = mul(g, sub(g, one, s.beta2), mul(g, gradScale, gradScale))

      const out: OptimizerGraph = { stateOutputs: {}, slots: [] }
      params.forEach((p, i) => {
        const grad = grads[i]
        const m = slotInput(g, dtype, 'exp_avg', p)
        const v = slotInput(g, dtype, 'exp_avg_sq', p)
        const m2 = add(g, mul(g, s.beta1, m.tensor), mul(g, gradCoef1, grad))
        const v2 = add(g, mul(g, s.beta2, v.tensor), mul(g, gradCoef2, mul(g, grad, grad)))
        const update = div(g, mul(g, stepSize, m2), add(g, sqrt(g, v2), epsHat))
        const decayed = p.decay === false ? p.tensor : mul(g, p.tensor, decayFactor)
        outputNextState(
          g,
          out,
          p,
          sub(g, decayed, update),
          [
            { ...m, next: m2 },
            { ...v, next: v2 },
          ],
          apply,
        )
      })
      return out
    },
    feeds(dtype, { step, lr }) {
      const values = { lr, step, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weight_decay: hp.weightDecay }
      return scalarFeeds(dtype, INPUTS, values)
    },
  }
}
