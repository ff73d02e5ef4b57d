import { ValidationError } from '../../errors.ts'
import { elementCount, type HostTensor, hostTensor } from '../runtime/host-tensor.ts'
import type { AdamWConfig } from './adamw.ts'
import { type AdamWKernel, adamWKernels, type SumOfSquaresKernel } from './adamw-kernel.ts'
import { type StepScalars, slotName } from './optimizer.ts'

const PAGE = 65536
const MAX_PAGES = 65536 // 4 GiB: wasm32's limit

interface Slot {
  name: string
  dims: number[]
  decay: boolean
  /** Float offset inside each region, a multiple of 4 (16-byte aligned for SIMD). */
  offset: number
  length: number
}

/**
 * AdamW for float32 params on the CPU provider, outside the graph: params, gradients and both
 * moments live in one WebAssembly memory (four regions laid out alike), the params are fed to the
 * forward+backward session without copies, and the update runs in place with the SIMD kernel.
 * Same math and hyperparameters as the in-graph `adamW`; float32 only.
 */
export class HostAdamW {
  private readonly slots = new Map<string, Slot>()
  private readonly memory: WebAssembly.Memory
  private readonly kernel: AdamWKernel
  private readonly sumsq: SumOfSquaresKernel
  private readonly regionFloats: number
  private readonly hp: Required<AdamWConfig>

  constructor(
    params: readonly { name: string; shape: readonly number[]; decay?: boolean }[],
    config: AdamWConfig = {},
  ) {
    this.hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...config }
    let offset = 0
    for (const p of params) {
      const length = elementCount(p.shape)
      this.slots.set(p.name, { name: p.name, dims: [...p.shape], decay: p.decay !== false, offset, length })
      offset += Math.ceil(length / 4) * 4
    }
    this.regionFloats = Math.max(offset, 4)
    const pages = Math.ceil((16 * this.regionFloats) / PAGE)
    if (pages > MAX_PAGES) {
      throw new ValidationError(`host AdamW holds at most ${(MAX_PAGES * PAGE) / 16} params, got ${offset}`)
    }
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages })
    const kernels = adamWKernels(this.memory)
    this.kernel = kernels.adamw
    this.sumsq = kernels.sumsq
  }

  /** Names of the params in layout order. */
  names(): string[] {
    return [...this.slots.keys()]
  }

  /** Region 0 params, 1 gradients, 2 first moments, 3 second moments. */
  private view(region: 0 | 1 | 2 | 3, s: Slot): Float32Array {
    return new Float32Array(this.memory.buffer, 4 * (region * this.regionFloats + s.offset), s.length)
  }

  private slot(name: string): Slot {
    const s = this.slots.get(name)
    if (s === undefined) throw new ValidationError(`'${name}' is not a trainable param of this optimizer`)
    return s
  }

  /** The live param as a host tensor over the optimizer's memory (fed to sessions without a copy). */
  param(name: string): HostTensor<'float32'> {
    const s = this.slot(name)
    return hostTensor('float32', s.dims, this.view(0, s))
  }

  /** Copies a param's value in; its moments restart at zero unless given (a checkpoint's exp_avg/exp_avg_sq). */
  load(name: string, value: HostTensor, moments?: { m: HostTensor; v: HostTensor }): void {
    const s = this.slot(name)
    const put = (region: 0 | 2 | 3, t: HostTensor | undefined, what: string) => {
      if (t === undefined) {
        this.view(region, s).fill(0)
        return
      }
      if (t.dtype !== 'float32' || t.dims.join() !== s.dims.join()) {
        throw new ValidationError(
          `${what} of '${name}' expects float32 [${s.dims.join(', ')}], got ${t.dtype} [${t.dims.join(', ')}]`,
        )
      }
      this.view(region, s).set(t.data as Float32Array)
    }
    put(0, value, 'value')
    put(2, moments?.m, 'exp_avg')
    put(3, moments?.v, 'exp_avg_sq')
  }

  /** Stores (or, with `accumulate`, adds) a gradient. */
  setGrad(name: string, grad: HostTensor, accumulate: boolean): void {
    const s = this.slot(name)
    if (grad.dtype !== 'float32' || grad.data.length !== s.length) {
      throw new ValidationError(
        `gradient of '${name}' expects float32 [${s.dims.join(', ')}], got ${grad.dtype} [${grad.dims.join(', ')}]`,
      )
    }
    const dst = this.view(1, s)
    const src = grad.data as Float32Array
    if (!accumulate) dst.set(src)
    else for (let i = 0; i < src.length; i++) dst[i] += src[i]
  }

  /** L2 norm of all stored gradients, accumulated in float64 (padding lanes hold zeros). */
  gradNorm(): number {
    let sum = 0
    for (const s of this.slots.values()) {
      sum += this.sumsq(4 * (this.regionFloats + s.offset), 16 * Math.ceil(s.length / 4))
    }
    return Math.sqrt(sum)
  }

  /** One AdamW step over every param, each gradient first multiplied by `gradScale`. */
  step({ step, lr }: StepScalars, gradScale: number): void {
    const { beta1, beta2, eps, weightDecay } = this.hp
    const bc1 = 1 - beta1 ** step
    const sqrtBc2 = Math.sqrt(1 - beta2 ** step)
    const stepSize = (lr * sqrtBc2) / bc1
    const epsHat = eps * sqrtBc2
    const c1 = (1 - beta1) * gradScale
    const c2 = (1 - beta2) * gradScale * gradScale
    const base = 4 * this.regionFloats
    for (const s of this.slots.values()) {
      const bytes = 4 * Math.ceil(s.length / 4) * 4
      const at = 4 * s.offset
      const decay = s.decay ? 1 - lr * weightDecay : 1
      this.kernel(
        at,
        base + at,
        2 * base + at,
        3 * base + at,
        bytes,
        beta1,
        c1,
        beta2,
        c2,
        stepSize,
        epsHat,
        decay,
      )
    }
  }

  /** Copies of the params (and moments, under the in-graph optimizer's slot names). */
  read(withSlots = false): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {}
    for (const s of this.slots.values()) {
      out[s.name] = hostTensor('float32', s.dims, this.view(0, s).slice())
      if (withSlots) {
        out[slotName('exp_avg', s.name)] = hostTensor('float32', s.dims, this.view(2, s).slice())
        out[slotName('exp_avg_sq', s.name)] = hostTensor('float32', s.dims, this.view(3, s).slice())
      }
    }
    return out
  }
}
