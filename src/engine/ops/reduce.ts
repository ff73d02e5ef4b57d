import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { type Dim, isStatic, numel, type Tensor } from '../tensor.ts'
import { equal } from './compare.ts'
import { div, mul } from './elementwise.ts'
import { gather } from './indexing.ts'
import { cast, expandLike, shape, unsqueeze } from './shape.ts'
import { attr, axesOf, int64s, requireFloat, scalarLike } from './util.ts'

export interface ReduceAttrs {
  /** Axes to reduce; all when omitted. */
  axes?: readonly number[]
  /** Keep reduced axes as size 1 (default false, as in numpy). */
  keepdims?: boolean
}

function resolve(g: Graph, type: string, x: Tensor, attrs: ReduceAttrs) {
  const axes = attrs.axes ? axesOf(g, type, attrs.axes, x.shape.length) : [...x.shape.keys()]
  const keepdims = attrs.keepdims ?? false
  const out: Dim[] = []
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d)
    else if (keepdims) out.push(1)
  })
  return { axes: [...axes].sort((a, b) => a - b), keepdims, out }
}

function emitReduce(g: Graph, type: string, x: Tensor, attrs: ReduceAttrs): Tensor[] {
  if (type !== 'ReduceMax') requireFloat(g, type, x)
  const { axes, keepdims, out } = resolve(g, type, x, attrs)
  return g.emit(type, [x, int64s(g, axes)], { keepdims: attr.int(keepdims ? 1 : 0) }, [
    { dtype: x.dtype, shape: out },
  ])
}

/** dy with the reduced axes restored as size 1, so it broadcasts against x. */
function keptDims(g: Graph, type: string, x: Tensor, dy: Tensor, attrs: ReduceAttrs): Tensor {
  const { axes, keepdims } = resolve(g, type, x, attrs)
  return keepdims || axes.length === 0 ? dy : unsqueeze(g, dy, { axes })
}

/** Number of elements reduced, as a scalar of x's dtype (computed at run time for named dims). */
function reducedCount(g: Graph, x: Tensor, axes: readonly number[]): Tensor {
  const dims = axes.map((a) => x.shape[a])
  if (isStatic(dims)) return scalarLike(g, x, numel(dims))
  const sizes = gather(g, shape(g, x), int64s(g, axes), { axis: 0 })
  return cast(g, reduceProd(g, sizes), { to: x.dtype })
}

/** Σ over axes;  dx = dy broadcast back over the reduced axes. */
export const reduceSum = defineOp<[x: Tensor], ReduceAttrs>({
  type: 'ReduceSum',
  forward: (g, [x], attrs) => emitReduce(g, 'ReduceSum', x, attrs),
  vjp: (g, { inputs: [x] }, [dy], attrs): Cotangents => [
    expandLike(g, keptDims(g, 'ReduceSum', x, dy, attrs), x),
  ],
})

/** Mean over axes;  dx = dy / n broadcast back over the reduced axes. */
export const reduceMean = defineOp<[x: Tensor], ReduceAttrs>({
  type: 'ReduceMean',
  forward: (g, [x], attrs) => emitReduce(g, 'ReduceMean', x, attrs),
  vjp: (g, { inputs: [x] }, [dy], attrs): Cotangents => {
    const { axes } = resolve(g, 'ReduceMean', x, attrs)
    return [expandLike(g, div(g, keptDims(g, 'ReduceMean', x, dy, attrs), reducedCount(g, x, axes)), x)]
  },
})

/** Product over axes (int64 sizes); no gradient. */
export const reduceProd = defineOp<[x: Tensor], ReduceAttrs>({
  type: 'ReduceProd',
  forward: (g, [x], attrs) => {
    const { axes, keepdims, out } = resolve(g, 'ReduceProd', x, attrs)
    return g.emit('ReduceProd', [x, int64s(g, axes)], { keepdims: attr.int(keepdims ? 1 : 0) }, [
      { dtype: x.dtype, shape: out },
    ])
  },
  vjp: null,
})

/**
 * Max over axes;  dx = dy at the positions equal to the max, split evenly between ties
 * (as JAX). For a stable logsumexp wrap it in stopGradient instead: its gradient cancels there.
 */
export const reduceMax = defineOp<[x: Tensor], ReduceAttrs>({
  type: 'ReduceMax',
  forward: (g, [x], attrs) => emitReduce(g, 'ReduceMax', x, attrs),
  vjp: (g, { inputs: [x], outputs: [y] }, [dy], attrs): Cotangents => {
    const { axes } = resolve(g, 'ReduceMax', x, attrs)
    const hit = cast(g, equal(g, x, keptDims(g, 'ReduceMax', x, y, attrs)), { to: x.dtype })
    const count = reduceSum(g, hit, { axes, keepdims: true })
    return [mul(g, hit, div(g, keptDims(g, 'ReduceMax', x, dy, attrs), count))]
  },
})

/**
 * Index of the largest entry along `axis` (the first one among ties, as numpy), as int64; no
 * gradient. Greedy decoding takes its tokens with it on the device, so no logits row comes back.
 */
export const argMax = defineOp<[x: Tensor], { axis: number; keepdims?: boolean }>({
  type: 'ArgMax',
  forward: (g, [x], { axis, keepdims = false }) => {
    const [a] = axesOf(g, 'ArgMax', [axis], x.shape.length)
    const out = x.shape.flatMap((d, i) => (i !== a ? [d] : keepdims ? [1] : []))
    return g.emit(
      'ArgMax',
      [x],
      { axis: attr.int(a), keepdims: attr.int(keepdims ? 1 : 0), select_last_index: attr.int(0) },
      [{ dtype: 'int64', shape: out }],
    )
  },
  vjp: null,
})
