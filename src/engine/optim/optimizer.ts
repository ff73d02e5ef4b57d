import type { Graph, Tensor } from '../graph.ts'
import type { HostTensor } from '../runtime/host-tensor.ts'

/** A trainable tensor of a step graph: a graph input whose value lives in the DeviceState under `name`. */
export interface TrainableParam {
  /** The graph input (and state) name, e.g. `model.layers.0.mlp.up_proj.weight`. */
  name: string
  tensor: Tensor
  /** Whether weight decay applies (biases and norm weights usually opt out). Default true. */
  decay?: boolean
  /**
   * A stack of same-shaped params updated as one tensor (stacks.ts): `tensor` is their [k, ...shape]
   * stack, and slots and next values are read and written per member.
   */
  members?: readonly TrainableParam[]
}

/** What an optimizer appended to a graph. */
export interface OptimizerGraph {
  /** Graph output -> state name: pass to createGraphSession's `stateOutputs`. */
  stateOutputs: Record<string, string>
  /** Extra state per parameter (moments, momentum buffers): zero tensors shaped like `param`. */
  slots: { name: string; param: string }[]
}

/** Scalars a step feeds: the schedule's learning rate and the 1-based optimizer step counter. */
export interface StepScalars {
  step: number
  lr: number
}

/**
 * An optimizer as a graph builder: hyperparameters are scalar graph inputs, so one compiled
 * session serves every step of a schedule.
 */
export interface Optimizer {
  readonly kind: string
  /**
   * Appends the update of every param to `g`. `grads[i]` is the gradient of `params[i]`;
   * `gradScale` (scalar) multiplies every gradient (clipping and micro-batch averaging folded in).
   * With `apply` (bool scalar), a false value leaves params and slots unchanged (a skipped step).
   */
  build(
    g: Graph,
    params: readonly TrainableParam[],
    grads: readonly Tensor[],
    gradScale: Tensor,
    apply?: Tensor,
  ): OptimizerGraph
  /** The scalar feeds of one step, in the params' float dtype. */
  feeds(dtype: ParamDType, scalars: StepScalars): Record<string, HostTensor>
}

/** Float types the optimizers train in (float16 params would need float32 master copies). */
export type ParamDType = 'float32' | 'float64'

/** Name of the graph output that carries the next value of a state tensor. */
export function nextName(state: string): string {
  return `${state}.next`
}

/** State name of an optimizer slot of a parameter, e.g. `optim.exp_avg.model.norm.weight`. */
export function slotName(slot: string, param: string): string {
  return `optim.${slot}.${param}`
}
