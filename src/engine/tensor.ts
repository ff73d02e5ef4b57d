/**
 * Element types the engine records; names follow onnxruntime-node's tensor types. uint16 carries
 * bfloat16 bits, which onnxruntime-node cannot feed as such.
 */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint16' | 'bool'
export type FloatDType = 'float32' | 'float64' | 'float16'

/** A static size, or a named dynamic dim such as 'batch' (the same name means the same size). */
export type Dim = number | string
export type Shape = readonly Dim[]

/** A symbolic value of a Graph: what ops take and return. */
export interface Tensor {
  readonly name: string
  readonly dtype: DType
  readonly shape: Shape
}

export type TypedArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array

/** TensorProto.DataType codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint16: 4,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  int32: 4,
  uint16: 2,
  bool: 1,
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16'
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number')
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

export function formatShape(shape: Shape): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`
}

/** Normalizes a possibly negative axis against a rank, or returns undefined when out of range. */
export function normalizeAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis
  return a >= 0 && a < rank && Number.isInteger(a) ? a : undefined
}
