/**
 * Where a graph gets each weight: frozen weights become initializers (external data, copied into
 * the session once), trainable ones become graph inputs named by their HF key, fed every step.
 */
import type { DType, Graph, Tensor, TypedArray } from '../engine/index.ts'
import { ShapeError } from '../errors.ts'
import type { FloatTensor } from './safetensors.ts'

export type FloatDType = 'float32' | 'float64'

export interface WeightSource {
  readonly dtype: FloatDType
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
 * Binds tensors into `g`: keys for which `trainable` is true become inputs, the rest initializers.
 * Returns the source and the inputs created, in the order of `tensors`.
 */
export function bindWeights(
  g: Graph,
  tensors: ReadonlyMap<string, FloatTensor | { shape: number[]; data: Float32Array | Float64Array }>,
  opts: { dtype: FloatDType; trainable: (key: string) => boolean },
): { source: WeightSource; inputs: Map<string, Tensor> } {
  const bound = new Map<string, Tensor>()
  const inputs = new Map<string, Tensor>()
  for (const [key, t] of tensors) {
    if (opts.trainable(key)) {
      const input = g.input(key, opts.dtype as DType, t.shape)
      inputs.set(key, input)
      bound.set(key, input)
    } else {
      bound.set(key, g.initializer(key, opts.dtype, t.shape, hostData(t.data, opts.dtype)))
    }
  }
  return { source: mapSource(bound, opts.dtype), inputs }
}

/** A source over tensors already in the graph; later maps override earlier ones. */
export function mapSource(bound: ReadonlyMap<string, Tensor>, dtype: FloatDType): WeightSource {
  return {
    dtype,
    has: (key) => bound.has(key),
    get(key) {
      const t = bound.get(key)
      if (!t) throw new ShapeError(`weight '${key}' is not bound in this graph`)
      return t
    },
  }
}
