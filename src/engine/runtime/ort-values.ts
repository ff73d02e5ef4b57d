import ort from 'onnxruntime-node'
import { AppError, ValidationError } from '../../errors.ts'
import { type HostDataMap, type HostDType, type HostTensor, hostTensor } from './host-tensor.ts'

/**
 * The only module that creates or disposes onnxruntime tensors. A DeviceValue is an opaque handle
 * to an onnxruntime tensor: in host memory (location 'cpu') or resident on the GPU ('gpu-buffer').
 */
export type DeviceValue = ort.Tensor

const HOST_DTYPES = new Set<string>(['float32', 'float64', 'float16', 'int64', 'int32', 'bool'])

/** Wraps a host tensor without copying: onnxruntime reads CPU inputs in place. */
export function toDeviceValue(t: HostTensor): DeviceValue {
  if (t.dtype === 'float16') return float16Value(t.data as Uint16Array, t.dims)
  return new ort.Tensor(t.dtype, t.data as never, t.dims as number[])
}

/**
 * A float16 tensor over raw bits. Where the runtime has Float16Array (Node 24), onnxruntime-common
 * wraps the bits in one, which onnxruntime-node's binding (1.30) reads as empty ("not enough space:
 * expected N, got 0"), as an input and as a preallocated output; a uint16 tensor over the same bits,
 * retyped float16, is read in place.
 */
function float16Value(bits: Uint16Array, dims: readonly number[]): DeviceValue {
  const t = new ort.Tensor('uint16', bits, dims as number[])
  Object.defineProperty(t, 'type', { value: 'float16' })
  return t
}

export function isOnDevice(v: DeviceValue): boolean {
  return v.location === 'gpu-buffer'
}

/** Reads a CPU-located value. Never called on gpu-buffer values: their download aborts the process in 1.30. */
export function toHostTensor(v: DeviceValue, name: string): HostTensor {
  if (v.location !== 'cpu') {
    throw new AppError(
      'internal',
      `output '${name}' is located on '${v.location}'; read it through the runtime's readback`,
    )
  }
  const dtype = v.type
  if (!HOST_DTYPES.has(dtype)) throw new ValidationError(`output '${name}' has unsupported dtype '${dtype}'`)
  let data = v.data as unknown as ArrayBufferView
  // float16 may arrive as Float16Array where the runtime has one; the engine's host form is raw bits.
  if (dtype === 'float16' && !(data instanceof Uint16Array)) {
    data = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
  }
  return hostTensor(dtype as HostDType, v.dims, data as HostDataMap[HostDType])
}

/** Frees a value's device memory. CPU values are left to the garbage collector. */
export function releaseDeviceValue(v: DeviceValue): void {
  if (v.location === 'gpu-buffer') v.dispose()
}
