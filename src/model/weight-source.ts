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
  /**
   * A weight fed in a half type, as its raw bits and the table that upcasts them: for uses that
   * need only part of it (rows of the embedding, chunks of the LM head) and upcast just that part.
   */
  half(key: string): HalfWeight | undefined
}

/** A half weight's uint16 bits and its upcast table (bits → value), both graph tensors. */
export interface HalfWeight {
  bits: Tensor
  table: Tensor
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

/** Half bits (uint16, any shape) in the table's float type. */
export function upcastBits(g: Graph, { bits, table }: HalfWeight): Tensor {
  return gather(g, table, cast(g, bits, { to: 'int32' }))
}

/** Rows `ids` of a weight (an embedding lookup); a half weight upcasts only the rows it gathers. */
export function gatherRows(g: Graph, w: WeightSource, key: string, ids: Tensor): Tensor {
  const half = w.half(key)
  if (!half) return gather(g, w.get(key), ids)
  return upcastBits(g, { bits: gather(g, half.bits, ids), table: half.table })
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
  const halves = new Map<string, HalfWeight>()
  const inputs = new Map<string, Tensor>()
  for (const [key, t] of tensors) {
    if (opts.trainable(key)) {
      const input = g.input(key, opts.dtype, t.shape)
      inputs.set(key, input)
      bound.set(key, input)
    } else if (opts.frozen === 'inputs' && 'dtype' in t) {
      const table = g.constant(hostData(halfTable(t.dtype), opts.dtype), opts.dtype, [65536])
      halves.set(key, { bits: g.input(key, HALF_INPUT_DTYPE, t.shape), table })
    } else if (opts.frozen === 'inputs') {
      bound.set(key, g.input(key, opts.dtype, t.shape))
    } else {
      const data = t.data instanceof Float64Array ? t.data : toFloatTensor(t as StoredTensor).data
      bound.set(key, g.initializer(key, opts.dtype, t.shape, hostData(data, opts.dtype)))
    }
  }
  return { source: mapSource(g, bound, opts.dtype, halves), inputs }
}

/**
 * A source over tensors already in the graph; half ones are upcast whole on first get(), in the
 * scope of that use.
 */
export function mapSource(
  g: Graph,
  bound: ReadonlyMap<string, Tensor>,
  dtype: FloatDType,
  halves: ReadonlyMap<string, HalfWeight> = new Map(),
): WeightSource {
  const made = new Map<string, Tensor>()
  return {
    dtype,
    has: (key) => bound.has(key) || halves.has(key),
    half: (key) => halves.get(key),
    get(key) {
      const t = bound.get(key) ?? made.get(key)
      if (t) return t
      const half = halves.get(key)
      if (!half) throw new ShapeError(`weight '${key}' is not bound in this graph`)
      const value = upcastBits(g, half)
      made.set(key, value)
      return value
    },
  }
}
