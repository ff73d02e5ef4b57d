import { ValidationError } from '../../errors.ts'
import { elementCount, type HostTensor, hostTensor } from '../runtime/host-tensor.ts'
import type { AdamWConfig } from './adamw.ts'
import { type AdamWKernels, type AdamWMemories, adamWKernels } from './adamw-kernel.ts'
import { encodeHalf, halfValues } from './half-gradients.ts'
import { type StepScalars, slotName } from './optimizer.ts'

const PAGE = 65536
/** Floats in one wasm32 memory (4 GiB): the most a shard, and so a single param, can hold. */
const MAX_SHARD_FLOATS = 2 ** 30
/** Slots start on multiples of 8 floats: 16-byte alignment of float32 and of bfloat16 arrays. */
const ALIGN = 8

export interface HostAdamWConfig extends AdamWConfig {
  /**
   * Storage of both moments. float32: 16 bytes per param with the param and its gradient;
   * bfloat16: 12 bytes per param, the moments rounded stochastically after every update.
   */
  stateDtype?: 'float32' | 'bfloat16'
  /**
   * Storage of the gradients the update reads. float16: 2 bytes per param instead of 4, each
   * tensor's gradient scaled by its own factor (setGradScale) so that its largest magnitude sits
   * near float16's top: a relative rounding of at most 2^-11 per element, no overflow, and an
   * underflow only below 2^-39 of the tensor's largest element.
   */
  gradDtype?: 'float32' | 'float16'
  /** Floats per shard (at most 2^30, the default): the params are packed, in order, into shards this big. */
  shardFloats?: number
}

interface Shard extends AdamWKernels {
  memories: AdamWMemories
}

interface Slot {
  name: string
  dims: number[]
  decay: boolean
  shard: Shard
  /** Index of the first element inside its shard's arrays, a multiple of ALIGN. */
  offset: number
  length: number
  /** What one unit of the stored gradient is worth: 1 / its scale (float16), or 1. */
  gradUnit: number
}

const padded = (n: number) => Math.ceil(n / ALIGN) * ALIGN
const memory = (bytes: number) => {
  const pages = Math.max(1, Math.ceil(bytes / PAGE))
  return new WebAssembly.Memory({ initial: pages, maximum: pages })
}

/**
 * AdamW for float32 params on the CPU provider, outside the graph: params, gradients and both
 * moments live in WebAssembly memories (one per array and shard, laid out alike), the params are
 * fed to the forward+backward session without copies, and the update runs in place with the SIMD
 * kernel. A shard spans up to 4 GiB per array, so the param count is bounded by host memory only.
 * Same math and hyperparameters as the in-graph `adamW`; float32 params.
 */
export class HostAdamW {
  private readonly slots = new Map<string, Slot>()
  private readonly hp: Required<AdamWConfig>
  private readonly bf16: boolean
  readonly gradDtype: 'float32' | 'float16'

  constructor(
    params: readonly { name: string; shape: readonly number[]; decay?: boolean }[],
    config: HostAdamWConfig = {},
  ) {
    const { stateDtype = 'float32', gradDtype = 'float32', shardFloats = MAX_SHARD_FLOATS, ...hp } = config
    this.hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...hp }
    this.bf16 = stateDtype === 'bfloat16'
    this.gradDtype = gradDtype
    if (!Number.isInteger(shardFloats) || shardFloats < ALIGN || shardFloats > MAX_SHARD_FLOATS) {
      throw new ValidationError(
        `shardFloats must be an integer in [${ALIGN}, ${MAX_SHARD_FLOATS}], got ${shardFloats}`,
      )
    }
    // Pack the params in order; each shard's memories are sized once its contents are known.
    const groups: { floats: number; members: Omit<Slot, 'shard' | 'gradUnit'>[] }[] = []
    for (const p of params) {
      const length = elementCount(p.shape)
      if (padded(length) > shardFloats) {
        throw new ValidationError(
          `param '${p.name}' has ${length} elements: more than one host AdamW shard holds (${shardFloats})`,
        )
      }
      let group = groups.at(-1)
      if (group === undefined || group.floats + padded(length) > shardFloats) {
        group = { floats: 0, members: [] }
        groups.push(group)
      }
      group.members.push({
        name: p.name,
        dims: [...p.shape],
        decay: p.decay !== false,
        offset: group.floats,
        length,
      })
      group.floats += padded(length)
    }
    const momentBytes = this.bf16 ? 2 : 4
    for (const { floats, members } of groups) {
      const memories = {
        p: memory(4 * floats),
        g: memory(this.gradBytes * floats),
        m: memory(momentBytes * floats),
        v: memory(momentBytes * floats),
      }
      const kernels = adamWKernels(memories, { moments: stateDtype, gradients: gradDtype })
      const shard = { memories, ...kernels }
      for (const s of members) this.slots.set(s.name, { ...s, shard, gradUnit: 1 })
    }
  }

  /** Names of the params in layout order. */
  names(): string[] {
    return [...this.slots.keys()]
  }

  private get gradBytes(): number {
    return this.gradDtype === 'float16' ? 2 : 4
  }

  private view(array: 'p' | 'g', s: Slot): Float32Array {
    return new Float32Array(s.shard.memories[array].buffer, 4 * s.offset, s.length)
  }

  /** A gradient's storage: float32, or float16 bits. */
  private gradView(s: Slot): Float32Array | Uint16Array {
    const buffer = s.shard.memories.g.buffer
    return this.gradDtype === 'float16'
      ? new Uint16Array(buffer, 2 * s.offset, s.length)
      : new Float32Array(buffer, 4 * s.offset, s.length)
  }

  /** A moment's storage: float32, or bfloat16 bits. */
  private momentView(array: 'm' | 'v', s: Slot): Float32Array | Uint16Array {
    const buffer = s.shard.memories[array].buffer
    return this.bf16
      ? new Uint16Array(buffer, 2 * s.offset, s.length)
      : new Float32Array(buffer, 4 * s.offset, s.length)
  }

  private slot(name: string): Slot {
    const s = this.slots.get(name)
    if (s === undefined) throw new ValidationError(`'${name}' is not a trainable param of this optimizer`)
    return s
  }

  /** The live param as a host tensor over the optimizer's memory (fed to sessions without a copy). */
  param(name: string): HostTensor<'float32'> {
    const s = this.slot(name)
    return hostTensor('float32', s.dims, this.view('p', s))
  }

  /**
   * A param's gradient storage, for a session to write the gradient into (instead of setGrad); a
   * float16 one then needs its scale (setGradScale).
   */
  gradBuffer(name: string): HostTensor<'float32' | 'float16'> {
    const s = this.slot(name)
    const data = this.gradView(s)
    return data instanceof Uint16Array
      ? hostTensor('float16', s.dims, data)
      : hostTensor('float32', s.dims, data)
  }

  /**
   * The gradient buffer of `name` holds the gradient times `scale`. A non-finite gradient comes
   * with a scale of 0 or NaN, which makes the norm non-finite, as float32 gradients would.
   */
  setGradScale(name: string, scale: number): void {
    this.slot(name).gradUnit = 1 / scale
  }

  /**
   * Copies a param's value in (unless it is param()'s own memory, written in place); its moments
   * restart at zero unless given (a checkpoint's exp_avg/exp_avg_sq).
   */
  load(name: string, value: HostTensor, moments?: { m: HostTensor; v: HostTensor }): void {
    const s = this.slot(name)
    const check = (t: HostTensor, what: string): Float32Array => {
      if (t.dtype !== 'float32' || t.dims.join() !== s.dims.join()) {
        throw new ValidationError(
          `${what} of '${name}' expects float32 [${s.dims.join(', ')}], got ${t.dtype} [${t.dims.join(', ')}]`,
        )
      }
      return t.data as Float32Array
    }
    const p = this.view('p', s)
    const data = check(value, 'value')
    if (data.buffer !== p.buffer || data.byteOffset !== p.byteOffset) p.set(data)
    for (const [array, t, what] of [
      ['m', moments?.m, 'exp_avg'],
      ['v', moments?.v, 'exp_avg_sq'],
    ] as const) {
      const dst = this.momentView(array, s)
      if (t === undefined) dst.fill(0)
      else if (dst instanceof Float32Array) dst.set(check(t, what))
      else toBfloat16(check(t, what), dst)
    }
  }

  /**
   * Stores (or, with `accumulate`, adds) a gradient in the optimizer's gradient dtype, given as
   * its values times `scale` (float16 gradients; float32 ones are unscaled).
   */
  setGrad(name: string, grad: HostTensor, accumulate: boolean, scale = 1): void {
    const s = this.slot(name)
    if (grad.dtype !== this.gradDtype || grad.data.length !== s.length) {
      throw new ValidationError(
        `gradient of '${name}' expects ${this.gradDtype} [${s.dims.join(', ')}], got ${grad.dtype} [${grad.dims.join(', ')}]`,
      )
    }
    const dst = this.gradView(s)
    if (dst instanceof Float32Array) {
      const src = grad.data as Float32Array
      if (!accumulate) dst.set(src)
      else for (let i = 0; i < src.length; i++) dst[i] += src[i]
      return
    }
    const src = grad.data as Uint16Array
    if (!accumulate) {
      dst.set(src)
      this.setGradScale(name, scale)
      return
    }
    // Each stored magnitude is at most HALF_GRADIENT_PEAK of its own units: their sum is at most
    // that many of the sum of the units, which becomes its unit (no overflow, one pass).
    const unitA = s.gradUnit
    const unitB = 1 / scale
    const unit = unitA + unitB
    const a = halfValues()
    for (let i = 0; i < src.length; i++) dst[i] = encodeHalf((a[dst[i]] * unitA + a[src[i]] * unitB) / unit)
    s.gradUnit = unit
  }

  /** L2 norm of all stored gradients, accumulated in float64 (padding lanes hold zeros). */
  gradNorm(): number {
    let sum = 0
    const bytes = this.gradBytes
    for (const s of this.slots.values())
      sum += s.shard.sumsq(bytes * s.offset, bytes * padded(s.length)) * s.gradUnit * s.gradUnit
    return Math.sqrt(sum)
  }

  /** One AdamW step over every param, each gradient first multiplied by `gradScale`. */
  step({ step, lr }: StepScalars, gradScale: number): void {
    const { beta1, beta2, eps, weightDecay } = this.hp
    const bc1 = 1 - beta1 ** step
    const sqrtBc2 = Math.sqrt(1 - beta2 ** step)
    const stepSize = (lr * sqrtBc2) / bc1
    const epsHat = eps * sqrtBc2
    let k = 0
    for (const s of this.slots.values()) {
      const scale = gradScale * s.gradUnit
      const c1 = (1 - beta1) * scale
      const c2 = (1 - beta2) * scale * scale
      const decay = s.decay ? 1 - lr * weightDecay : 1
      // A distinct odd seed per step and slot: reproducible stochastic rounding of bfloat16 moments.
      const seed = (Math.imul(step, 0x9e3779b1) ^ Math.imul(++k, 0x85ebca77)) | 1
      s.shard.adamw(4 * s.offset, 4 * padded(s.length), beta1, c1, beta2, c2, stepSize, epsHat, decay, seed)
    }
  }

  /** Copies of the params (and float32 moments, under the in-graph optimizer's slot names). */
  read(withSlots = false): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {}
    for (const s of this.slots.values()) {
      out[s.name] = hostTensor('float32', s.dims, this.view('p', s).slice())
      if (withSlots) {
        for (const [array, slot] of [
          ['m', 'exp_avg'],
          ['v', 'exp_avg_sq'],
        ] as const) {
          const src = this.momentView(array, s)
          const data = src instanceof Float32Array ? src.slice() : fromBfloat16(src)
          out[slotName(slot, s.name)] = hostTensor('float32', s.dims, data)
        }
      }
    }
    return out
  }
}

/** float32 → bfloat16 bits, rounding to nearest even (moments are finite). */
function toBfloat16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length)
  for (let i = 0; i < bits.length; i++) dst[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16
}

function fromBfloat16(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length)
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16
  return new Float32Array(bits.buffer)
}
