import { Graph, type Tensor } from '../graph.ts'
import { add, where } from '../ops/index.ts'
import { nextName, type Optimizer, type ParamDType, slotName, type TrainableParam } from './optimizer.ts'
import { checkParams } from './params.ts'
import {
  appendUpdate,
  type BuiltStep,
  gradsOf,
  outputMetrics,
  type ParamInfo,
  paramInfos,
  STEP_INPUTS,
  STEP_OUTPUTS,
  scaledObjective,
} from './train-step.ts'

/** Bool scalar input: false on a step's first micro-batch (accumulators restart), true after. */
export const ACCUMULATE_INPUT = 'optim.accumulate'

export interface MicroStepSpec {
  loss: Tensor
  params: readonly TrainableParam[]
  metrics?: Readonly<Record<string, Tensor>>
  /**
   * Differentiate the loss times the fed `optim.loss_scale` (float16 compute: small gradients stay
   * above float16's underflow); the accumulators then hold scaled gradients, which the update
   * step divides out through its `optim.grad_scale`.
   */
  lossScale?: boolean
}

export interface BuiltMicroStep {
  graph: Graph
  dtype: ParamDType
  params: ParamInfo[]
  /** One accumulator per param: `optim.grad_acc.<param>`. */
  accumulators: { name: string; param: string }[]
  stateOutputs: Record<string, string>
  metricNames: string[]
  /** Whether the graph takes `optim.loss_scale` (see MicroStepSpec.lossScale). */
  lossScale: boolean
}

export const accumulatorName = (param: string): string => slotName('grad_acc', param)

/**
 * Gradient accumulation, first half: forward + backward of one micro-batch, adding its gradients to
 * the accumulators (or replacing them on the first micro-batch, so no reset pass is needed).
 */
export function buildMicroStep(g: Graph, spec: MicroStepSpec): BuiltMicroStep {
  const grads = gradsOf(g, scaledObjective(g, spec.loss, spec.lossScale), spec.params)
  const dtype = checkParams(spec.params, grads)
  const accumulate = g.input(ACCUMULATE_INPUT, 'bool', [])
  g.output(spec.loss, STEP_OUTPUTS.loss)
  const metricNames = outputMetrics(g, spec.metrics)
  const stateOutputs: Record<string, string> = {}
  const accumulators = spec.params.map((p, i) => {
    const name = accumulatorName(p.name)
    const acc = g.input(name, dtype, [...p.tensor.shape])
    g.output(where(g, accumulate, add(g, acc, grads[i]), grads[i]), nextName(name))
    stateOutputs[nextName(name)] = name
    return { name, param: p.name }
  })
  return {
    graph: g,
    dtype,
    params: paramInfos(spec.params),
    accumulators,
    stateOutputs,
    metricNames,
    lossScale: spec.lossScale ?? false,
  }
}

export interface UpdateSpec {
  params: readonly (ParamInfo & { decay?: boolean })[]
  dtype: ParamDType
  optimizer: Optimizer
  clip?: boolean
  /** Leave params and slots unchanged when the gradient norm is not finite (see appendUpdate). */
  skipNonFinite?: boolean
  /** Update same-shaped params in stacks of this many (stacks.ts; WEBGPU_STACK on WebGPU). */
  stackParams?: number
}

/**
 * Gradient accumulation, second half: a small graph that averages the accumulated gradients
 * (`optim.grad_scale` = 1 / micro-batches, and 1 / loss scale), clips them and applies the optimizer.
 */
export function buildUpdateStep(spec: UpdateSpec): BuiltStep {
  const g = new Graph({ name: 'optimizer_step' })
  const params: TrainableParam[] = spec.params.map((p) => ({
    name: p.name,
    tensor: g.input(p.name, spec.dtype, p.shape),
    decay: p.decay,
  }))
  const grads = spec.params.map((p) => g.input(accumulatorName(p.name), spec.dtype, p.shape))
  const gradScale = g.input(STEP_INPUTS.gradScale, spec.dtype, [])
  const clip = spec.clip ?? false
  const update = appendUpdate(g, params, grads, gradScale, spec.optimizer, {
    clip,
    skipNonFinite: spec.skipNonFinite,
    stackParams: spec.stackParams,
  })
  return {
    graph: g,
    dtype: spec.dtype,
    params: spec.params.map((p) => ({ name: p.name, shape: p.shape })),
    slots: update.slots,
    stateOutputs: update.stateOutputs,
    metricNames: [],
    optimizer: spec.optimizer,
    clip,
  }
}
