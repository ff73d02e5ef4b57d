import { GraphError, ShapeError } from '../../errors.ts'
import type { Graph } from '../graph.ts'
import type { AttrValue } from '../onnx/model.ts'
import {
  type Dim,
  type DType,
  formatShape,
  isFloat,
  normalizeAxis,
  type Shape,
  type Tensor,
} from '../tensor.ts'

export const attr = {
  int: (value: number): AttrValue => ({ type: 'int', value }),
  float: (value: number): AttrValue => ({ type: 'float', value }),
  ints: (value: readonly number[]): AttrValue => ({ type: 'ints', value }),
}

/** Throws a ShapeError prefixed with the node label, e.g. 'model.layers.3.self_attn/MatMul: ...'. */
export function shapeError(g: Graph, opType: string, message: string, details?: unknown): never {
  throw new ShapeError(`${g.nodeLabel(opType)}: ${message}`, details)
}

export function requireSameDType(g: Graph, opType: string, tensors: readonly Tensor[]): DType {
  const dtype = tensors[0].dtype
  for (const t of tensors) {
    if (t.dtype !== dtype) {
      throw new GraphError(
        `${g.nodeLabel(opType)}: dtype mismatch: ${tensors.map((x) => `'${x.name}' ${x.dtype}`).join(', ')}`,
      )
    }
  }
  return dtype
}

export function requireFloat(g: Graph, opType: string, t: Tensor): void {
  if (!isFloat(t.dtype))
    throw new GraphError(`${g.nodeLabel(opType)}: '${t.name}' is ${t.dtype}, expected a float type`)
}

export function requireDType(g: Graph, opType: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new GraphError(
      `${g.nodeLabel(opType)}: '${t.name}' is ${t.dtype}, expected ${allowed.join(' or ')}`,
    )
  }
}

/**
 * Two dims that may be equal: named dims are only known at run time, so they are compatible with
 * anything; static sizes must match.
 */
export function sameDim(a: Dim, b: Dim): boolean {
  return typeof a === 'string' || typeof b === 'string' || a === b
}

/** Numpy broadcasting of static/named shapes; a named dim is assumed not to be 1. */
export function broadcastShapes(g: Graph, opType: string, shapes: readonly Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length))
  const out: Dim[] = []
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1
      if (d === 1) continue
      if (dim === 1 || dim === d) dim = d
      else if (typeof d === 'number' && typeof dim === 'number') {
        shapeError(g, opType, `cannot broadcast ${shapes.map(formatShape).join(' with ')}`, { shapes })
      } else if (typeof dim === 'string' && typeof d === 'number') dim = d
    }
    out.push(dim)
  }
  return out
}

export function axisOf(g: Graph, opType: string, axis: number, shape: Shape | number): number {
  const rank = typeof shape === 'number' ? shape : shape.length
  const a = normalizeAxis(axis, rank)
  if (a === undefined) {
    shapeError(
      g,
      opType,
      `axis ${axis} is out of range for ${typeof shape === 'number' ? `rank ${rank}` : formatShape(shape)}`,
    )
  }
  return a
}

export function axesOf(g: Graph, opType: string, axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => {
    const n = normalizeAxis(a, rank)
    if (n === undefined) shapeError(g, opType, `axis ${a} is out of range for rank ${rank}`)
    return n
  })
  if (new Set(out).size !== out.length) shapeError(g, opType, `repeated axis in [${axes.join(', ')}]`)
  return out
}

/** A scalar constant with `t`'s dtype. */
export function scalarLike(g: Graph, t: Tensor, value: number): Tensor {
  return g.constant(value, t.dtype)
}

/** An int64 vector constant (axes, shapes, pads). */
export function int64s(g: Graph, values: readonly number[]): Tensor {
  return g.constant(
    BigInt64Array.from(values, (v) => BigInt(v)),
    'int64',
    [values.length],
  )
}
