import {
  type AdamWConfig,
  adamW,
  buildMicroStep,
  buildTrainStep,
  buildUpdateStep,
  createStepRunner,
  type HostTensor,
  type LossScaler,
  type StepInput,
  type StepPlan,
  type StepResult,
  type StepRunner,
  slotName,
  WEBGPU_STACK,
  zerosHost,
} from '../engine/index.ts'
import type { PolicyObjective } from './graphs.ts'
import type { ResidentWeights } from './resident-weights.ts'

export interface TrainableInfo {
  name: string
  shape: number[]
  decay: boolean
}

const MOMENTS = ['exp_avg', 'exp_avg_sq'] as const

/**
 * A policy's optimizer on WebGPU: the trainable tensors and AdamW moments (and, when steps
 * accumulate micro-batches, the gradient accumulators) stay in the policy's device state between
 * steps (the scoring and decode sessions read the same buffers); only the batch goes up and loss,
 * gradient norm and metrics come back. The host copies of the trainable tensors go stale after a
 * step: `read` brings the state back, explicitly, for checkpoints, exports and reference snapshots.
 */
export class DeviceTraining {
  /** One runner per loss and plan (fused or accumulating), all over the same device state. */
  private readonly runners = new Map<string, Promise<StepRunner>>()
  /** The state holds this object's params and slots (after the first step since a load). */
  private initialized = false
  /** Moments to start from at the next step (a restored checkpoint); zeros when absent. */
  private pendingSlots?: Readonly<Record<string, HostTensor>>

  constructor(
    private readonly resident: ResidentWeights,
    private readonly params: readonly TrainableInfo[],
    private readonly adamw: AdamWConfig | undefined,
    /** The host values of the trainable tensors, as last loaded or read. */
    private readonly hostParams: () => Record<string, HostTensor>,
    private readonly intraOpThreads?: number,
    /** Float16 compute: scales the loss, and the update skips steps whose gradients overflowed. */
    private readonly lossScaler?: LossScaler,
  ) {}

  /** Whether steps ran since the host values were loaded or last read back. */
  hostStale = false

  /**
   * One AdamW step over the micro-batches' feeds; `objective` builds this loss's forward graph. One
   * micro-batch runs as one fused graph (forward, backward and update: no accumulators), several
   * through the micro-step graph and then the update graph.
   */
  async step(
    loss: string,
    objective: () => PolicyObjective,
    microBatches: readonly Readonly<Record<string, HostTensor>>[],
    input: StepInput,
  ): Promise<StepResult> {
    const runner = await this.runner(loss, objective, microBatches.length > 1)
    if (!this.initialized) {
      runner.init(this.hostParams(), this.pendingSlots)
      this.initialized = true
      this.pendingSlots = undefined
    }
    // Frozen tensors after a change, and what init set, go up now; later steps move none of them.
    await this.resident.upload()
    await this.resident.state.upload()
    this.hostStale = true
    const scaler = this.lossScaler
    if (!scaler) return runner.step(microBatches, input)
    const lossScale = scaler.scale
    // Bias correction counts the updates the moments received: skipped steps are not among them.
    const r = await runner.step(microBatches, { ...input, step: input.step - scaler.skipped, lossScale })
    const applied = scaler.update(r.gradNorm)
    return { ...r, metrics: { ...r.metrics, 'amp/loss_scale': lossScale, 'amp/skipped': applied ? 0 : 1 } }
  }

  private runner(loss: string, objective: () => PolicyObjective, accumulate: boolean): Promise<StepRunner> {
    const key = `${loss}${accumulate ? '/accumulate' : '/fused'}`
    let runner = this.runners.get(key)
    if (runner === undefined) {
      const { g, spec } = objective()
      // float16 compute: the loss is scaled and a step whose gradients overflowed is skipped
      const lossScale = this.lossScaler !== undefined
      const update = {
        optimizer: adamW(this.adamw),
        clip: true,
        skipNonFinite: lossScale,
        stackParams: this.resident.state.provider === 'webgpu' ? WEBGPU_STACK : undefined,
      }
      const plan: StepPlan = accumulate
        ? {
            micro: buildMicroStep(g, { ...spec, lossScale }),
            update: buildUpdateStep({ ...update, params: this.params, dtype: 'float32' }),
          }
        : { fused: buildTrainStep(g, { ...spec, ...update, lossScale }) }
      runner = createStepRunner(
        plan,
        { provider: this.resident.state.provider, intraOpThreads: this.intraOpThreads },
        this.resident.state,
      )
      this.runners.set(key, runner)
    }
    return runner
  }

  /** The trainable tensors (and, with `withSlots`, their moments) as they are now, on the host. */
  async read(withSlots: boolean): Promise<Record<string, HostTensor>> {
    if (!this.initialized) {
      const out: Record<string, HostTensor> = { ...this.hostParams() }
      if (withSlots) {
        for (const p of this.params)
          for (const m of MOMENTS)
            out[slotName(m, p.name)] =
              this.pendingSlots?.[slotName(m, p.name)] ?? zerosHost('float32', p.shape)
      }
      return out
    }
    const names = this.params.map((p) => p.name)
    if (withSlots) for (const p of this.params) for (const m of MOMENTS) names.push(slotName(m, p.name))
    return this.resident.state.read(names)
  }

  /** The host values were replaced (restored, merged, re-initialised): the next step starts from them. */
  loaded(slots?: Readonly<Record<string, HostTensor>>): void {
    this.lossScaler?.restartCount()
    this.initialized = false
    this.hostStale = false
    this.pendingSlots = slots
  }

  async release(): Promise<void> {
    const runners = await Promise.all(this.runners.values())
    this.runners.clear()
    for (const r of runners) await r.release()
  }
}
