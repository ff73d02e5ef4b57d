import { ValidationError } from '../../errors.ts'
import { grad } from '../autodiff.ts'
import type { Graph, Tensor } from '../graph.ts'
import { less, mul } from '../ops/index.ts'
import type { HostTensor } from '../runtime/host-tensor.ts'
import { clipByGlobalNorm, globalNorm } from './clip.ts'
import { toHalfGradient } from './half-gradients.ts'
import type { Optimizer, ParamDType, TrainableParam } from './optimizer.ts'
import { checkParams } from './params.ts'
import { stackParams } from './stacks.ts'

/** Output names every step graph shares. */
export const STEP_OUTPUTS = { loss: 'loss', gradNorm: 'grad_norm' } as const
/** Scalar inputs of the step graphs besides the optimizer's own. */
export const STEP_INPUTS = {
  maxGradNorm: 'optim.max_grad_norm',
  gradScale: 'optim.grad_scale',
  /** Multiplies the loss before the backward pass (loss scaling of float16 compute). */
  lossScale: 'optim.loss_scale',
} as const

export interface StepSpec {
  /** Scalar training loss (mean over the batch). */
  loss: Tensor
  params: readonly TrainableParam[]
  optimizer: Optimizer
  /** Clip the global gradient norm to the fed `optim.max_grad_norm`. */
  clip?: boolean
  /** Auxiliary scalar metrics the loss declares, output under their own names (e.g. `rewards/margins`). */
  metrics?: Readonly<Record<string, Tensor>>
  /**
   * Differentiate the loss times the fed `optim.loss_scale` (float16 compute) and multiply the
   * gradients by the fed `optim.grad_scale` (its inverse) before the update.
   */
  lossScale?: boolean
  /** Leave params and slots unchanged when the gradient norm is not finite (see appendUpdate). */
  skipNonFinite?: boolean
  /** Update same-shaped params in stacks of this many (stacks.ts). */
  stackParams?: number
}

/** A trainable parameter as runners see it: its state name and static shape (slots are zeros of it). */
export interface ParamInfo {
  name: string
  shape: number[]
}

/** What a built step graph needs from the runtime. */
export interface BuiltStep {
  graph: Graph
  dtype: ParamDType
  params: ParamInfo[]
  /** Optimizer slots (moments, momentum buffers), each shaped like its param. */
  slots: { name: string; param: string }[]
  stateOutputs: Record<string, string>
  metricNames: string[]
  optimizer: Optimizer
  clip: boolean
  /** Whether the graph takes `optim.loss_scale` and `optim.grad_scale` (a fused step; see StepSpec). */
  lossScale?: boolean
}

export function paramInfos(params: readonly TrainableParam[]): ParamInfo[] {
  return params.map((p) => {
    const shape = p.tensor.shape
    if (!shape.every((d) => typeof d === 'number')) {
      throw new ValidationError(`trainable param '${p.name}' needs a static shape, got [${shape.join(', ')}]`)
    }
    return { name: p.name, shape: shape as number[] }
  })
}

export function outputMetrics(g: Graph, metrics: Readonly<Record<string, Tensor>> | undefined): string[] {
  const names = Object.keys(metrics ?? {})
  for (const name of names) {
    if (name === STEP_OUTPUTS.loss || name === STEP_OUTPUTS.gradNorm) {
      throw new ValidationError(`metric name '${name}' is reserved`)
    }
    g.output(metrics![name], name)
  }
  return names
}

/**
 * Gradient norm, clipping coefficient and optimizer update for `grads`, each first multiplied by
 * `gradScale` (1/micro-batches when they are accumulated sums). With `skipNonFinite`, a step whose
 * gradient norm is infinite or NaN (a float16 overflow) changes nothing; the norm output tells. With
 * `stackParams`, same-shaped params are updated in stacks of that many (stacks.ts).
 */
export function appendUpdate(
  g: Graph,
  params: readonly TrainableParam[],
  grads: readonly Tensor[],
  gradScale: Tensor | undefined,
  optimizer: Optimizer,
  opts: { clip: boolean; skipNonFinite?: boolean; stackParams?: number },
): { stateOutputs: Record<string, string>; slots: { name: string; param: string }[] } {
  const dtype = checkParams(params, grads)
  const stacked = opts.stackParams ? stackParams(g, params, grads, opts.stackParams) : { params, grads }
  let norm = globalNorm(g, stacked.grads)
  if (gradScale !== undefined) norm = mul(g, norm, gradScale)
  g.output(norm, STEP_OUTPUTS.gradNorm)
  let scale = gradScale ?? g.constant(1, dtype)
  if (opts.clip) {
    const coef = clipByGlobalNorm(g, norm, g.input(STEP_INPUTS.maxGradNorm, dtype, []))
    scale = gradScale === undefined ? coef : mul(g, gradScale, coef)
  }
  // NaN compares false and +inf is not below itself: true exactly for finite norms.
  const finite = opts.skipNonFinite ? less(g, norm, g.constant(Number.POSITIVE_INFINITY, dtype)) : undefined
  return optimizer.build(g, stacked.params, stacked.grads, scale, finite)
}

/** Name of the graph output carrying a param's gradient (gradient-only step graphs). */
export function gradName(param: string): string {
  return `grad.${param}`
}

/** Name of the output carrying the scale of a param's float16 gradient (see half-gradients.ts). */
export function gradScaleName(param: string): string {
  return `grad_scale.${param}`
}

/** True for the outputs that carry gradients and their scales (not the loss or a metric). */
export function isGradientOutput(name: string): boolean {
  return name.startsWith('grad.') || name.startsWith('grad_scale.')
}

export type GradientDType = 'float32' | 'float16'

export interface GradStepSpec {
  loss: Tensor
  params: readonly TrainableParam[]
  metrics?: Readonly<Record<string, Tensor>>
  /** float16: each gradient output as float16 bits of gradient × its own scale, output beside it. */
  gradientDtype?: GradientDType
}

/** A forward+backward graph returning loss, metrics and every param's gradient (for a host optimizer). */
export interface BuiltGradStep {
  graph: Graph
  dtype: ParamDType
  params: (ParamInfo & { decay: boolean })[]
  metricNames: string[]
  gradientDtype: GradientDType
}

/** The loss to differentiate: times the fed `optim.loss_scale` when the gradients are loss-scaled. */
export function scaledObjective(g: Graph, loss: Tensor, lossScale: boolean | undefined): Tensor {
  return lossScale ? mul(g, loss, g.input(STEP_INPUTS.lossScale, loss.dtype, [])) : loss
}

/** Gradients of `loss` for every param; a param the loss does not reach is an error. */
export function gradsOf(g: Graph, loss: Tensor, params: readonly TrainableParam[]): Tensor[] {
  return grad(
    g,
    loss,
    params.map((p) => p.tensor),
  ).map((gr, i) => {
    if (gr === null) throw new ValidationError(`trainable param '${params[i].name}' does not affect the loss`)
    return gr
  })
}

export function buildGradStep(g: Graph, spec: GradStepSpec): BuiltGradStep {
  const grads = gradsOf(g, spec.loss, spec.params)
  const dtype = checkParams(spec.params, grads)
  g.output(spec.loss, STEP_OUTPUTS.loss)
  const metricNames = outputMetrics(g, spec.metrics)
  const gradientDtype = spec.gradientDtype ?? 'float32'
  if (gradientDtype === 'float16' && dtype !== 'float32') {
    throw new ValidationError(`float16 gradients are made from float32 params, got ${dtype}`)
  }
  spec.params.forEach((p, i) => {
    if (gradientDtype === 'float32') g.output(grads[i], gradName(p.name))
    else {
      const { bits, scale } = toHalfGradient(g, grads[i])
      g.output(bits, gradName(p.name))
      g.output(scale, gradScaleName(p.name))
    }
  })
  const params = paramInfos(spec.params).map((p, i) => ({ ...p, decay: spec.params[i].decay !== false }))
  return { graph: g, dtype, params, metricNames, gradientDtype }
}

/** The scale a gradient output was multiplied by: its float16 scale output, or 1. */
export function gradScaleOf(out: Readonly<Record<string, HostTensor>>, param: string): number {
  const scale = out[gradScaleName(param)]
  return scale === undefined ? 1 : Number(scale.data[0])
}

/**
 * Appends backward pass, gradient clipping and the optimizer to a graph that holds the forward
 * pass and loss: one session runs a whole training step and returns loss, gradient norm and metrics.
 */
export function buildTrainStep(g: Graph, spec: StepSpec): BuiltStep {
  const clip = spec.clip ?? false
  const params = paramInfos(spec.params)
  const grads = gradsOf(g, scaledObjective(g, spec.loss, spec.lossScale), spec.params)
  const dtype = checkParams(spec.params, grads)
  g.output(spec.loss, STEP_OUTPUTS.loss)
  const metricNames = outputMetrics(g, spec.metrics)
  const gradScale = spec.lossScale ? g.input(STEP_INPUTS.gradScale, dtype, []) : undefined
  const update = appendUpdate(g, spec.params, grads, gradScale, spec.optimizer, {
    clip,
    skipNonFinite: spec.skipNonFinite,
    stackParams: spec.stackParams,
  })
  return {
    graph: g,
    dtype,
    params,
    slots: update.slots,
    stateOutputs: update.stateOutputs,
    metricNames,
    optimizer: spec.optimizer,
    clip,
    lossScale: spec.lossScale ?? false,
  }
}
