import ort from 'onnxruntime-node'
import { AppError, NotFoundError } from '../../errors.ts'
import type { HostTensor } from './host-tensor.ts'
import {
  type DeviceValue,
  isOnDevice,
  releaseDeviceValue,
  toDeviceValue,
  toHostTensor,
} from './ort-values.ts'
import type { Provider } from './providers.ts'
import { identityModel } from './tiny-models.ts'
import { countRun } from './transfers.ts'

/**
 * Named tensors that live across runs (trainable weights, optimizer moments, gradient accumulators).
 * Sessions read their inputs from here and their state outputs replace entries; on WebGPU the
 * entries are GPU buffers and only `read` brings them back to the host.
 */
export class DeviceState {
  private readonly values = new Map<string, DeviceValue>()
  /** Identity sessions that move tensors between host and device, by dtype, rank and target. */
  private readonly identities = new Map<string, Promise<ort.InferenceSession>>()

  constructor(readonly provider: Provider) {}

  has(name: string): boolean {
    return this.values.has(name)
  }

  names(): string[] {
    return [...this.values.keys()]
  }

  /** Where a tensor lives now: 'cpu' (host memory) or 'gpu-buffer' (resident on the WebGPU device). */
  location(name: string): string {
    return this.value(name).location
  }

  /** Sets (uploads) a tensor; the first run that consumes it moves it to the device. */
  set(name: string, tensor: HostTensor): void {
    this.replace(name, toDeviceValue(tensor))
  }

  /** @internal for GraphSession: the value a run feeds. */
  value(name: string): DeviceValue {
    const v = this.values.get(name)
    if (v === undefined) throw new NotFoundError('state tensor', name)
    return v
  }

  /** @internal for GraphSession: a run's output takes the place of the previous value, which is freed. */
  replace(name: string, next: DeviceValue): void {
    const prev = this.values.get(name)
    this.values.set(name, next)
    if (prev !== undefined && prev !== next) releaseDeviceValue(prev)
  }

  /** Drops a tensor and frees its device buffer (no-op when absent). */
  delete(name: string): void {
    const v = this.values.get(name)
    if (v === undefined) return
    this.values.delete(name)
    releaseDeviceValue(v)
  }

  /** Copies tensors to the host (for checkpoints and metrics); all of them when no names are given. */
  async read(names: readonly string[] = this.names()): Promise<Record<string, HostTensor>> {
    const out: Record<string, HostTensor> = {}
    for (const name of names) {
      const v = this.value(name)
      out[name] = isOnDevice(v) ? await this.download(name, v) : toHostTensor(v, name)
    }
    return out
  }

  /**
   * Moves host-located tensors (all when no names are given) onto the device, where the provider
   * keeps tensors between runs (WebGPU): runs that only read them then stop copying them in each
   * time. Elsewhere a no-op.
   */
  async upload(names: readonly string[] = this.names()): Promise<void> {
    if (this.provider !== 'webgpu') return
    for (const name of names) {
      const v = this.value(name)
      if (isOnDevice(v)) continue
      try {
        const out = await (await this.identity(v, 'gpu-buffer')).run({ x: v })
        countRun([v], [out.y as DeviceValue])
        this.replace(name, out.y as DeviceValue)
      } catch (err) {
        throw new AppError(
          'internal',
          `moving state tensor '${name}' to ${this.provider} failed: ${String(err)}`,
        )
      }
    }
  }

  /** Frees every device buffer and the transfer sessions. */
  async release(): Promise<void> {
    for (const v of this.values.values()) releaseDeviceValue(v)
    this.values.clear()
    const identities = await Promise.all(this.identities.values())
    this.identities.clear()
    await Promise.all(identities.map((r) => r.release()))
  }

  /** An Identity session on this provider for `v`'s dtype and rank, its output placed at `location`. */
  private identity(v: DeviceValue, location: 'cpu' | 'gpu-buffer'): Promise<ort.InferenceSession> {
    const key = `${v.type}/${v.dims.length}/${location}`
    let session = this.identities.get(key)
    if (session === undefined) {
      session = ort.InferenceSession.create(identityModel(v.type as HostTensor['dtype'], v.dims.length), {
        executionProviders: [this.provider],
        logSeverityLevel: 3,
        preferredOutputLocation: location,
      })
      this.identities.set(key, session)
    }
    return session
  }

  /** gpu-buffer tensors cannot be downloaded directly in onnxruntime-node 1.30: copy through Identity. */
  private async download(name: string, v: DeviceValue): Promise<HostTensor> {
    try {
      const out = await (await this.identity(v, 'cpu')).run({ x: v })
      countRun([v], [out.y as DeviceValue])
      return toHostTensor(out.y as DeviceValue, name)
    } catch (err) {
      throw new AppError(
        'internal',
        `reading state tensor '${name}' back from ${this.provider} failed: ${String(err)}`,
      )
    }
  }
}
