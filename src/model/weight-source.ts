/**
 * Where a graph gets each weight. Trainable weights are graph inputs named by their HF key, fed
 * every step. Frozen ones are either initializers (copied into the session: standalone graphs) or,
 * for graphs of a Policy, inputs too: every session then reads the same host buffers, and a weight
 * stored in a half type is fed as it is and upcast inside the graph where it is first used (so on
 * the CPU only the layer at work exists in float32 during inference).
 */
import { cast, type DType, type Graph, gather, type Tensor, type TypedArray } from '../engine/index.ts'
import { ShapeError } from '../errors.ts'
import { decodeHalf, type HalfDType, type StoredTensor, toFloatTensor } from './safetensors.ts'

export type FloatDType = 'float32' | 'float64'

/** How a graph takes its frozen weights: baked in as initializers, or fed as inputs. */
export type FrozenWeights = 'initializers' | 'inputs'

export interface WeightSource {
  /** The graph's float type, or float16 for the casts of mixed precision (precision.ts). */
  readonly dtype: FloatDType | 'float16'
  /** The graph tensor of a weight, by HF key (or adapter key). */
  get(key: string): Tensor
  has(key: string): boolean
}

/** Host data in the graph's float type (float64 graphs are for finite-difference checks). */
export function hostData(data: Float32Array | Float64Array, dtype: FloatDType): TypedArray {
  if (dtype === 'float32') return data instanceof Float32Array ? data : Float32Array.from(data)
  return data instanceof Float64Array ? data : Float64Array.from(data)
}

/**
 * The graph input type of a half weight: its raw bits as uint16 (onnxruntime-node feeds no
 * bfloat16, and its float16 feeds failed in 1.30 under Node 24).
 */
export const HALF_INPUT_DTYPE: DType = 'uint16'

/** Every bit pattern's value, per half type: upcasting is one table lookup per element. */
const tables = new Map<HalfDType, Float32Array>()
function halfTable(dtype: HalfDType): Float32Array {
  let table = tables.get(dtype)
  if (!table) {
    table = decodeHalf(
      dtype,
      Uint16Array.from({ length: 65536 }, (_, i) => i),
      new Float32Array(65536),
    )
    tables.set(dtype, table)
  }
  return table
}

/** A half weight input (uint16 bits) in the graph's float type. */
function upcast(g: Graph, bits: Tensor, half: HalfDType, to: FloatDType): Tensor {
  const values = g.constant(hostData(halfTable(half), to), to, [65536])
  return gather(g, values, cast(g, bits, { to: 'int32' }))
}

type BindableTensor = StoredTensor | { shape: number[]; data: Float64Array }

/**
 * Binds tensors into `g`: keys for which `trainable` is true become inputs, the rest initializers
 * or inputs as `frozen` says. Returns the source and the trainable inputs, in the order of `tensors`.
 */
export function bindWeights(
  g: Graph,
  tensors: ReadonlyMap<string, BindableTensor>,
  opts: { dtype: FloatDType; trainable: (key: string) => boolean; frozen?: FrozenWeights },
): { source: WeightSource; inputs: Map<string, Tensor> } {
  const bound = new Map<string, Tensor>()
  const deferred = new Map<string, () => Tensor>()
  const inputs = new Map<string, Tensor>()
  for (const [key, t] of tensors) {
    if (opts.trainable(key)) {
      const input = g.input(key, opts.dtype, t.shape)
      inputs.set(key, input)
      bound.set(key, input)
    } else if (opts.frozen === 'inputs' && 'dtype' in t) {
      const { dtype } = t
      const input = g.input(key, HALF_INPUT_DTYPE, t.shape)
      deferred.set(key, () => upcast(g, input, dtype, opts.dtype))
    } else if (opts.frozen === 'inputs') {
      bound.set(key, g.input(key, opts.dtype, t.shape))
    } else {
      const data = t.data instanceof Float64Array ? t.data : toFloatTensor(t as StoredTensor).data
      bound.set(key, g.initializer(key, opts.dtype, t.shape, hostData(data, opts.dtype)))
    }
  }
  return { source: mapSource(bound, opts.dtype, deferred), inputs }
}

/**
 * A source over tensors already in the graph; `deferred` ones are made on first use, in the scope
 * of that use.
 */
export function mapSource(
  bound: ReadonlyMap<string, Tensor>,
  dtype: FloatDType,
  deferred: ReadonlyMap<string, () => Tensor> = new Map(),
): WeightSource {
  const made = new Map<string, Tensor>()
  return {
    dtype,
    has: (key) => bound.has(key) || deferred.has(key),
    get(key) {
      const t = bound.get(key) ?? made.get(key)
      if (t) return t
      const make = deferred.get(key)
      if (!make) throw new ShapeError(`weight '${key}' is not bound in this graph`)
      const value = make()
      made.set(key, value)
      return value
    },
  }
}
