import { ValidationError } from '../../errors.ts'
import type { Graph, Tensor } from '../graph.ts'
import { where } from '../ops/index.ts'
import { type HostTensor, scalarHost } from '../runtime/host-tensor.ts'
import { nextName, type OptimizerGraph, type ParamDType, slotName, type TrainableParam } from './optimizer.ts'
import { stack, unstack } from './stacks.ts'

/** Checks that params and grads pair up and share one float dtype; returns it. */
export function checkParams(params: readonly TrainableParam[], grads: readonly Tensor[]): ParamDType {
  if (params.length === 0) throw new ValidationError('an optimizer needs at least one trainable parameter')
  if (params.length !== grads.length) {
    throw new ValidationError(`${params.length} params but ${grads.length} gradients`)
  }
  const dtype = params[0].tensor.dtype
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new ValidationError(`trainable params must be float32 or float64, '${params[0].name}' is ${dtype}`)
  }
  params.forEach((p, i) => {
    if (p.tensor.dtype !== dtype) {
      throw new ValidationError(
        `trainable params must share one dtype: '${p.name}' is ${p.tensor.dtype}, expected ${dtype}`,
      )
    }
    if (grads[i].dtype !== dtype) {
      throw new ValidationError(`gradient of '${p.name}' is ${grads[i].dtype}, expected ${dtype}`)
    }
  })
  return dtype
}

/** Declares scalar hyperparameter inputs named `optim.<key>`. */
export function scalarInputs<K extends string>(
  g: Graph,
  dtype: ParamDType,
  keys: readonly K[],
): Record<K, Tensor> {
  return Object.fromEntries(keys.map((k) => [k, g.input(`optim.${k}`, dtype, [])])) as Record<K, Tensor>
}

/** The feeds of `scalarInputs`: each key's value as a scalar `optim.<key>`. */
export function scalarFeeds<K extends string>(
  dtype: ParamDType,
  keys: readonly K[],
  values: Record<K, number>,
): Record<string, HostTensor> {
  return Object.fromEntries(keys.map((k) => [`optim.${k}`, scalarHost(dtype, values[k])]))
}

/**
 * Declares one optimizer slot of a param: an input shaped like it, under `slotName(slot, param)`;
 * for a stack, one input per member, stacked. outputNextState names the next values after `slot`.
 */
export function slotInput(
  g: Graph,
  dtype: ParamDType,
  slot: string,
  p: TrainableParam,
): { slot: string; tensor: Tensor } {
  const input = (q: TrainableParam) => g.input(slotName(slot, q.name), dtype, [...q.tensor.shape])
  return { slot, tensor: p.members ? stack(g, p.members.map(input)) : input(p) }
}

/**
 * Outputs the next value of a param and of each of its slots (per member for a stack), and records
 * them in `out` as state that the runner carries into the next step. With `apply` (a bool scalar),
 * a false step keeps every value as it was (a skipped step).
 */
export function outputNextState(
  g: Graph,
  out: OptimizerGraph,
  p: TrainableParam,
  next: Tensor,
  slots: readonly { slot: string; tensor: Tensor; next: Tensor }[],
  apply?: Tensor,
): void {
  const gated = (value: Tensor, current: Tensor) => (apply ? where(g, apply, value, current) : value)
  const members = p.members ?? [p]
  const perMember = (value: Tensor) => (p.members ? unstack(g, value) : [value])
  const output = (state: string, value: Tensor) => {
    g.output(value, nextName(state))
    out.stateOutputs[nextName(state)] = state
  }
  const params = perMember(gated(next, p.tensor))
  members.forEach((m, i) => {
    output(m.name, params[i])
  })
  for (const slot of slots) {
    const values = perMember(gated(slot.next, slot.tensor))
    members.forEach((m, i) => {
      const name = slotName(slot.slot, m.name)
      output(name, values[i])
      out.slots.push({ name, param: m.name })
    })
  }
}
