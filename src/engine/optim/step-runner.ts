import { ValidationError } from '../../errors.ts'
import type { SerializedGraph } from '../graph.ts'
import { type HostTensor, hostTensor, scalarHost, zerosHost } from '../runtime/host-tensor.ts'
import type { Provider } from '../runtime/providers.ts'
import { createGraphSession, type GraphSession, type GraphSessionOptions } from '../runtime/session.ts'
import { DeviceState } from '../runtime/state.ts'
import { ACCUMULATE_INPUT, type BuiltMicroStep } from './accumulate.ts'
import type { AdamWConfig } from './adamw.ts'
import { clipCoefficient } from './clip.ts'
import { HostAdamW } from './host-adamw.ts'
import { type StepScalars, slotName } from './optimizer.ts'
import {
  type BuiltGradStep,
  type BuiltStep,
  gradName,
  gradScaleOf,
  STEP_INPUTS,
  STEP_OUTPUTS,
} from './train-step.ts'

/**
 * How a step runs: one fused graph; a micro-batch graph plus an optimizer graph (gradient
 * accumulation); or, on the CPU provider, a gradient graph plus the in-place host AdamW.
 */
export type StepPlan =
  | { fused: BuiltStep }
  | { micro: BuiltMicroStep; update: BuiltStep }
  | { grads: BuiltGradStep; hostAdamW: AdamWConfig; clip?: boolean }

export interface StepResult {
  /** Mean loss over the micro-batches. */
  loss: number
  /** Global norm of the (averaged) gradient, before clipping. */
  gradNorm: number
  /** Mean of each auxiliary metric over the micro-batches. */
  metrics: Record<string, number>
}

export interface StepInput extends StepScalars {
  /** Clip threshold, required when the plan clips. */
  maxGradNorm?: number
  /** The loss scale, required when the micro-step graph scales its loss (float16 compute). */
  lossScale?: number
}

export type StepSessionOptions = Omit<GraphSessionOptions, 'stateOutputs' | 'name'>

export interface StepRunner {
  readonly provider: Provider
  /** Sets the trainable params; optimizer slots start at zero unless `slots` restores them (by slot name). */
  init(params: Readonly<Record<string, HostTensor>>, slots?: Readonly<Record<string, HostTensor>>): void
  /** One optimizer step over one or more micro-batches. */
  step(microBatches: readonly Readonly<Record<string, HostTensor>>[], input: StepInput): Promise<StepResult>
  /** Params (and, with `withSlots`, optimizer state) copied to the host, e.g. for a checkpoint. */
  read(withSlots?: boolean): Promise<Record<string, HostTensor>>
  /** Where a param or slot lives between steps: 'cpu' or 'gpu-buffer'. */
  location(name: string): string
  release(): Promise<void>
}

const scalarOf = (t: HostTensor): number => Number(t.data[0])

function means(
  outs: readonly Record<string, HostTensor>[],
  names: readonly string[],
): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, outs.reduce((s, o) => s + scalarOf(o[n]), 0) / outs.length]))
}

function checkStepInput(microBatches: readonly unknown[], clip: boolean, input: StepInput): void {
  if (microBatches.length === 0) throw new ValidationError('a step needs at least one micro-batch')
  if (clip && !(input.maxGradNorm !== undefined && input.maxGradNorm > 0)) {
    throw new ValidationError(`this step clips gradients: give maxGradNorm > 0, got ${input.maxGradNorm}`)
  }
}

async function openSession(
  graph: { serialize(): SerializedGraph },
  options: StepSessionOptions,
  name: string,
  stateOutputs: Record<string, string> = {},
): Promise<GraphSession> {
  return createGraphSession(graph.serialize(), { ...options, name, stateOutputs })
}

function checkLossScale(input: StepInput): number {
  const s = input.lossScale
  if (!(s !== undefined && Number.isFinite(s) && s > 0)) {
    throw new ValidationError(`this step scales its loss: give a finite lossScale > 0, got ${s}`)
  }
  return s
}

/** Steps whose optimizer is part of the graphs; state stays in a DeviceState (GPU buffers on WebGPU). */
class GraphStepRunner implements StepRunner {
  readonly state: DeviceState
  private readonly ownsState: boolean

  constructor(
    private readonly opt: BuiltStep,
    private readonly micro: BuiltMicroStep | undefined,
    private readonly sessions: { step: GraphSession; micro?: GraphSession },
    readonly provider: Provider,
    shared?: DeviceState,
  ) {
    this.state = shared ?? new DeviceState(provider)
    this.ownsState = shared === undefined
  }

  init(params: Readonly<Record<string, HostTensor>>, slots: Readonly<Record<string, HostTensor>> = {}): void {
    const shapes = new Map(this.opt.params.map((p) => [p.name, p.shape]))
    for (const [name, shape] of shapes) {
      const t = params[name]
      if (t === undefined) throw new ValidationError(`missing initial value of trainable param '${name}'`)
      if (t.dtype !== this.opt.dtype || t.dims.join() !== shape.join()) {
        throw new ValidationError(
          `param '${name}' expects ${this.opt.dtype} [${shape.join(', ')}], got ${t.dtype} [${t.dims.join(', ')}]`,
        )
      }
      this.state.set(name, t)
    }
    for (const s of [...this.opt.slots, ...(this.micro?.accumulators ?? [])]) {
      this.state.set(s.name, slots[s.name] ?? zerosHost(this.opt.dtype, shapes.get(s.param)!))
    }
  }

  async step(
    microBatches: readonly Readonly<Record<string, HostTensor>>[],
    input: StepInput,
  ): Promise<StepResult> {
    checkStepInput(microBatches, this.opt.clip, input)
    const scalars: Record<string, HostTensor> = { ...this.opt.optimizer.feeds(this.opt.dtype, input) }
    if (this.opt.clip) scalars[STEP_INPUTS.maxGradNorm] = scalarHost(this.opt.dtype, input.maxGradNorm!)
    if (this.micro === undefined) {
      if (microBatches.length !== 1) {
        throw new ValidationError(
          `a fused step takes one batch, got ${microBatches.length}; plan gradient accumulation`,
        )
      }
      if (this.opt.lossScale) {
        const lossScale = checkLossScale(input)
        scalars[STEP_INPUTS.lossScale] = scalarHost(this.opt.dtype, lossScale)
        scalars[STEP_INPUTS.gradScale] = scalarHost(this.opt.dtype, 1 / lossScale)
      }
      const out = await this.sessions.step.runWithState(this.state, { ...microBatches[0], ...scalars })
      return {
        loss: scalarOf(out.loss),
        gradNorm: scalarOf(out[STEP_OUTPUTS.gradNorm]),
        metrics: means([out], this.opt.metricNames),
      }
    }
    // A shared state another runner initialised (a fused step's) has no accumulators yet; the first
    // micro-batch overwrites them, so zeros of the right shape do.
    for (const a of this.micro.accumulators) {
      if (!this.state.has(a.name))
        this.state.set(a.name, zerosHost(this.micro.dtype, this.paramShape(a.param)))
    }
    const lossScale = this.micro.lossScale ? checkLossScale(input) : 1
    const scaled: Record<string, HostTensor> = this.micro.lossScale
      ? { [STEP_INPUTS.lossScale]: scalarHost(this.micro.dtype, lossScale) }
      : {}
    const outs: Record<string, HostTensor>[] = []
    for (let i = 0; i < microBatches.length; i++) {
      const accumulate = hostTensor('bool', [], Uint8Array.of(i > 0 ? 1 : 0))
      outs.push(
        await this.sessions.micro!.runWithState(this.state, {
          ...microBatches[i],
          ...scaled,
          [ACCUMULATE_INPUT]: accumulate,
        }),
      )
    }
    // The accumulators hold sums of scaled gradients: the update averages and unscales them at once.
    scalars[STEP_INPUTS.gradScale] = scalarHost(this.opt.dtype, 1 / (microBatches.length * lossScale))
    const update = await this.sessions.step.runWithState(this.state, scalars)
    return {
      loss: means(outs, [STEP_OUTPUTS.loss])[STEP_OUTPUTS.loss],
      gradNorm: scalarOf(update[STEP_OUTPUTS.gradNorm]),
      metrics: means(outs, this.micro.metricNames),
    }
  }

  private paramShape(param: string): number[] {
    return this.opt.params.find((p) => p.name === param)!.shape
  }

  read(withSlots = false): Promise<Record<string, HostTensor>> {
    const names = [
      ...this.opt.params.map((p) => p.name),
      ...(withSlots ? this.opt.slots.map((s) => s.name) : []),
    ]
    return this.state.read(names)
  }

  location(name: string): string {
    return this.state.location(name)
  }

  async release(): Promise<void> {
    await this.sessions.step.release()
    await this.sessions.micro?.release()
    if (this.ownsState) await this.state.release()
  }
}

/** Steps on the CPU provider with the gradient graph plus HostAdamW (no optimizer state through onnxruntime). */
class HostAdamWStepRunner implements StepRunner {
  readonly provider = 'cpu' as const
  private readonly optimizer: HostAdamW

  constructor(
    private readonly built: BuiltGradStep,
    private readonly session: GraphSession,
    config: AdamWConfig,
    private readonly clip: boolean,
  ) {
    this.optimizer = new HostAdamW(built.params, { ...config, gradDtype: built.gradientDtype })
  }

  init(params: Readonly<Record<string, HostTensor>>, slots: Readonly<Record<string, HostTensor>> = {}): void {
    for (const p of this.built.params) {
      const value = params[p.name]
      if (value === undefined)
        throw new ValidationError(`missing initial value of trainable param '${p.name}'`)
      const m = slots[slotName('exp_avg', p.name)]
      const v = slots[slotName('exp_avg_sq', p.name)]
      this.optimizer.load(p.name, value, m && v ? { m, v } : undefined)
    }
  }

  async step(
    microBatches: readonly Readonly<Record<string, HostTensor>>[],
    input: StepInput,
  ): Promise<StepResult> {
    checkStepInput(microBatches, this.clip, input)
    const params = Object.fromEntries(this.built.params.map((p) => [p.name, this.optimizer.param(p.name)]))
    const outs: Record<string, HostTensor>[] = []
    for (let i = 0; i < microBatches.length; i++) {
      const out = await this.session.run({ ...microBatches[i], ...params })
      for (const p of this.built.params)
        this.optimizer.setGrad(p.name, out[gradName(p.name)], i > 0, gradScaleOf(out, p.name))
      outs.push(out)
    }
    const average = 1 / microBatches.length
    const gradNorm = this.optimizer.gradNorm() * average
    const coef = this.clip ? clipCoefficient(gradNorm, input.maxGradNorm!) : 1
    this.optimizer.step(input, average * coef)
    return {
      loss: means(outs, [STEP_OUTPUTS.loss])[STEP_OUTPUTS.loss],
      gradNorm,
      metrics: means(outs, this.built.metricNames),
    }
  }

  async read(withSlots = false): Promise<Record<string, HostTensor>> {
    return this.optimizer.read(withSlots)
  }

  location(): string {
    return 'cpu'
  }

  release(): Promise<void> {
    return this.session.release()
  }
}

/**
 * Opens the sessions of a plan on a provider and returns a runner for its steps. With `shared`, the
 * in-graph plans keep their state in that DeviceState (which other sessions may read, e.g. a
 * policy's scoring and decoding) and leave it alive on release.
 */
export async function createStepRunner(
  plan: StepPlan,
  options: StepSessionOptions,
  shared?: DeviceState,
): Promise<StepRunner> {
  if ('grads' in plan) {
    if (options.provider !== 'cpu' || plan.grads.dtype !== 'float32') {
      throw new ValidationError(
        `host AdamW runs float32 params on the cpu provider, got ${plan.grads.dtype} on ${options.provider}`,
      )
    }
    const session = await openSession(plan.grads.graph, options, 'grad_step')
    return new HostAdamWStepRunner(plan.grads, session, plan.hostAdamW, plan.clip ?? false)
  }
  if ('fused' in plan) {
    const step = await openSession(plan.fused.graph, options, 'train_step', plan.fused.stateOutputs)
    return new GraphStepRunner(plan.fused, undefined, { step }, options.provider, shared)
  }
  const micro = await openSession(plan.micro.graph, options, 'micro_step', plan.micro.stateOutputs)
  try {
    const step = await openSession(plan.update.graph, options, 'optimizer_step', plan.update.stateOutputs)
    return new GraphStepRunner(plan.update, plan.micro, { step, micro }, options.provider, shared)
  } catch (err) {
    await micro.release()
    throw err
  }
}
