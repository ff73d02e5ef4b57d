import { ShapeError, ValidationError } from '../../errors.ts'

import type { DType } from '../tensor.ts'

/** Element types a host tensor can carry: the engine's (float16 travels as raw Uint16 bits). */
export type HostDType = DType

export interface HostDataMap {
  float32: Float32Array
  float64: Float64Array
  float16: Uint16Array
  int64: BigInt64Array
  int32: Int32Array
  uint16: Uint16Array
  bool: Uint8Array
}

/** A tensor in JS memory: what callers feed to and receive from a GraphSession. */
export interface HostTensor<D extends HostDType = HostDType> {
  readonly dtype: D
  readonly dims: readonly number[]
  readonly data: HostDataMap[D]
}

const CONSTRUCTORS = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint16: Uint16Array,
  bool: Uint8Array,
} as const

export function elementCount(dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

function checkDims(dims: readonly number[], what: string): void {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(`${what}: invalid dims [${dims.join(', ')}]`, { dims })
  }
}

/** Builds a host tensor, checking that the array type and length agree with dtype and dims. */
export function hostTensor<D extends HostDType>(
  dtype: D,
  dims: readonly number[],
  data: HostDataMap[D],
): HostTensor<D> {
  checkDims(dims, `${dtype} tensor`)
  const Ctor = CONSTRUCTORS[dtype]
  if (Ctor === undefined) throw new ValidationError(`unsupported host tensor dtype '${dtype}'`, { dtype })
  if (!(data instanceof Ctor)) {
    throw new ValidationError(
      `${dtype} tensor needs a ${Ctor.name}, got ${data?.constructor?.name ?? typeof data}`,
    )
  }
  const expected = elementCount(dims)
  if (data.length !== expected) {
    throw new ShapeError(
      `${dtype} tensor with dims [${dims.join(', ')}] needs ${expected} elements, got ${data.length}`,
      { dims, expected, got: data.length },
    )
  }
  return { dtype, dims: [...dims], data }
}

/** A zero-filled host tensor. */
export function zerosHost<D extends HostDType>(dtype: D, dims: readonly number[]): HostTensor<D> {
  checkDims(dims, `${dtype} tensor`)
  const Ctor = CONSTRUCTORS[dtype] as unknown as new (n: number) => HostDataMap[D]
  return hostTensor(dtype, dims, new Ctor(elementCount(dims)))
}

/** A float scalar (dims []) in the given float dtype: how hyperparameters are fed. */
export function scalarHost(dtype: 'float32' | 'float64', value: number): HostTensor<'float32' | 'float64'> {
  return dtype === 'float32'
    ? hostTensor('float32', [], Float32Array.of(value))
    : hostTensor('float64', [], Float64Array.of(value))
}
