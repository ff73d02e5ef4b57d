import { GradError } from '../../errors.ts'
import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import {
  type Dim,
  type DType,
  formatShape,
  isFloat,
  isStatic,
  ONNX_DTYPE,
  type Shape,
  type Tensor,
} from '../tensor.ts'
import {
  attr,
  axesOf,
  axisOf,
  broadcastShapes,
  int64s,
  requireDType,
  requireSameDType,
  sameDim,
  shapeError,
} from './util.ts'

/** The runtime shape of x as an int64 vector: a constant when static, else a Shape node. */
export function shapeOf(g: Graph, x: Tensor): Tensor {
  return isStatic(x.shape) ? int64s(g, x.shape) : shape(g, x)
}

/** Shape(x): the int64 vector of x's dims; no gradient. */
export const shape = defineOp<[x: Tensor]>({
  type: 'Shape',
  forward: (g, [x]) => g.emit('Shape', [x], {}, [{ dtype: 'int64', shape: [x.shape.length] }]),
  vjp: null,
})

/** [start, start + delta, …) below limit, from int64 scalars; no gradient. */
export const range = defineOp<[start: Tensor, limit: Tensor, delta: Tensor]>({
  type: 'Range',
  forward: (g, [start, limit, delta]) => {
    for (const t of [start, limit, delta]) {
      requireDType(g, 'Range', t, ['int64'])
      if (t.shape.length !== 0)
        shapeError(g, 'Range', `'${t.name}' must be a scalar, got ${formatShape(t.shape)}`)
    }
    return g.emit('Range', [start, limit, delta], {}, [{ dtype: 'int64', shape: ['?'] }])
  },
  vjp: null,
})

/** Output shape of an ONNX Reshape target (0 copies the input dim, -1 is inferred). */
function reshapeTarget(g: Graph, x: Shape, target: readonly number[]): Dim[] {
  const out: Dim[] = target.map((d, i) => (d === 0 ? x[i] : d))
  const inferred = target.indexOf(-1)
  if (target.some((d, i) => d < -1 || (d === -1 && i !== inferred) || (d === 0 && i >= x.length))) {
    shapeError(g, 'Reshape', `invalid target [${target.join(', ')}] for ${formatShape(x)}`)
  }
  const known = (s: readonly Dim[]) =>
    s.filter((d): d is number => typeof d === 'number').reduce((a, b) => a * b, 1)
  const namedIn = x.filter((d): d is string => typeof d === 'string')
  const namedOut = out.filter((d, i): d is string => typeof d === 'string' && i !== inferred)
  const rest = [...namedIn]
  const unmatched = namedOut.filter((d) => {
    const at = rest.indexOf(d)
    if (at >= 0) rest.splice(at, 1)
    return at < 0
  })
  const others = out.filter((_, i) => i !== inferred)
  const ratio = known(x) / known(others)
  if (inferred < 0) {
    if (rest.length === 0 && unmatched.length === 0 && ratio !== 1) {
      shapeError(g, 'Reshape', `cannot reshape ${formatShape(x)} to ${formatShape(out)}`)
    }
    return out
  }
  if (rest.length === 0 && unmatched.length === 0) {
    if (!Number.isInteger(ratio))
      shapeError(g, 'Reshape', `cannot reshape ${formatShape(x)} to ${formatShape(out)}`)
    out[inferred] = ratio
  } else {
    out[inferred] = unmatched.length === 0 ? [...rest, ...(ratio === 1 ? [] : [ratio])].join('*') : '?'
  }
  return out
}

/** Reshape to a static target (ONNX semantics: 0 copies a dim, -1 infers one);  dx = dy reshaped back. */
export const reshape = defineOp<[x: Tensor], { shape: readonly number[] }>({
  type: 'Reshape',
  forward: (g, [x], { shape: target }) => {
    const out = reshapeTarget(g, x.shape, target)
    return g.emit('Reshape', [x, int64s(g, target)], {}, [{ dtype: x.dtype, shape: out }])
  },
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [reshapeLike(g, dy, x)],
})

/** Reshape to a runtime int64 shape; `shape` is the symbolic result for checks. */
export const reshapeDynamic = defineOp<[x: Tensor, target: Tensor], { shape: Shape }>({
  type: 'ReshapeDynamic',
  forward: (g, [x, target], { shape: out }) => {
    requireDType(g, 'Reshape', target, ['int64'])
    return g.emit('Reshape', [x, target], {}, [{ dtype: x.dtype, shape: out }])
  },
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [reshapeLike(g, dy, x!), null],
})

/** Reshapes x to the shape of `like` (static when possible). */
export function reshapeLike(g: Graph, x: Tensor, like: Tensor): Tensor {
  if (isStatic(like.shape)) return reshape(g, x, { shape: like.shape })
  return reshapeDynamic(g, x, shapeOf(g, like), { shape: like.shape })
}

/** Broadcasts x to a static shape (numpy rules);  dx = dy summed over the broadcast axes (by grad()). */
export const expand = defineOp<[x: Tensor], { shape: readonly number[] }>({
  type: 'Expand',
  forward: (g, [x], { shape: target }) => {
    const out = broadcastShapes(g, 'Expand', [x.shape, target])
    return g.emit('Expand', [x, int64s(g, target)], {}, [{ dtype: x.dtype, shape: out }])
  },
  vjp: (_g, _ctx, [dy]): Cotangents => [dy],
})

/** Broadcasts x to a runtime int64 shape; `shape` is the symbolic result for checks. */
export const expandDynamic = defineOp<[x: Tensor, target: Tensor], { shape: Shape }>({
  type: 'ExpandDynamic',
  forward: (g, [x, target], { shape: out }) => {
    requireDType(g, 'Expand', target, ['int64'])
    return g.emit('Expand', [x, target], {}, [
      { dtype: x.dtype, shape: broadcastShapes(g, 'Expand', [x.shape, out]) },
    ])
  },
  vjp: (_g, _ctx, [dy]): Cotangents => [dy, null],
})

/** Broadcasts x to the shape of `like`. */
export function expandLike(g: Graph, x: Tensor, like: Tensor): Tensor {
  if (isStatic(like.shape)) return expand(g, x, { shape: like.shape })
  return expandDynamic(g, x, shapeOf(g, like), { shape: like.shape })
}

/** Zeros with t's dtype and shape (Expand of a scalar: stays on the GPU, unlike ConstantOfShape). */
export function zerosLike(g: Graph, t: Tensor): Tensor {
  return expandLike(g, g.constant(0, t.dtype), t)
}

function invertPermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length)
  perm.forEach((p, i) => {
    inv[p] = i
  })
  return inv
}

/** y = xᵀ over perm;  dx = dy transposed by the inverse permutation. */
export const transpose = defineOp<[x: Tensor], { perm: readonly number[] }>({
  type: 'Transpose',
  forward: (g, [x], { perm }) => {
    const p = axesOf(g, 'Transpose', perm, x.shape.length)
    if (p.length !== x.shape.length)
      shapeError(g, 'Transpose', `perm [${perm}] does not match ${formatShape(x.shape)}`)
    return g.emit('Transpose', [x], { perm: attr.ints(p) }, [
      { dtype: x.dtype, shape: p.map((i) => x.shape[i]) },
    ])
  },
  vjp: (g, { inputs: [x] }, [dy], { perm }): Cotangents => [
    transpose(g, dy, { perm: invertPermutation(axesOf(g, 'Transpose', perm, x.shape.length)) }),
  ],
})

/** Inserts size-1 axes (positions in the output);  dx = dy squeezed. */
export const unsqueeze = defineOp<[x: Tensor], { axes: readonly number[] }>({
  type: 'Unsqueeze',
  forward: (g, [x], { axes }) => {
    const rank = x.shape.length + axes.length
    const at = new Set(axesOf(g, 'Unsqueeze', axes, rank))
    const out: Dim[] = []
    let next = 0
    for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : x.shape[next++])
    return g.emit(
      'Unsqueeze',
      [
        x,
        int64s(
          g,
          [...at].sort((a, b) => a - b),
        ),
      ],
      {},
      [{ dtype: x.dtype, shape: out }],
    )
  },
  vjp: (g, { outputs: [y] }, [dy], { axes }): Cotangents => [
    squeeze(g, dy, { axes: axesOf(g, 'Unsqueeze', axes, y.shape.length) }),
  ],
})

/** Removes the given size-1 axes;  dx = dy unsqueezed. */
export const squeeze = defineOp<[x: Tensor], { axes: readonly number[] }>({
  type: 'Squeeze',
  forward: (g, [x], { axes }) => {
    const at = axesOf(g, 'Squeeze', axes, x.shape.length)
    for (const a of at) {
      if (typeof x.shape[a] === 'number' && x.shape[a] !== 1) {
        shapeError(g, 'Squeeze', `axis ${a} of ${formatShape(x.shape)} is not 1`)
      }
    }
    const out = x.shape.filter((_, i) => !at.includes(i))
    return g.emit(
      'Squeeze',
      [
        x,
        int64s(
          g,
          [...at].sort((a, b) => a - b),
        ),
      ],
      {},
      [{ dtype: x.dtype, shape: out }],
    )
  },
  vjp: (g, { inputs: [x] }, [dy], { axes }): Cotangents => [
    unsqueeze(g, dy, { axes: axesOf(g, 'Squeeze', axes, x.shape.length) }),
  ],
})

/** Joins tensors along an axis;  each input gets its slice of dy (one Split node). */
export const concat = defineOp<Tensor[], { axis: number }>({
  type: 'Concat',
  forward: (g, xs, { axis }) => {
    if (xs.length === 0) shapeError(g, 'Concat', 'needs at least one input')
    const dtype = requireSameDType(g, 'Concat', xs)
    const a = axisOf(g, 'Concat', axis, xs[0].shape.length)
    const out = [...xs[0].shape]
    for (const x of xs.slice(1)) {
      const ok = x.shape.length === out.length && x.shape.every((d, i) => i === a || sameDim(d, out[i]))
      if (!ok)
        shapeError(
          g,
          'Concat',
          `shapes ${xs.map((t) => formatShape(t.shape)).join(', ')} differ off axis ${a}`,
        )
      const d = x.shape[a]
      out[a] = typeof out[a] === 'number' && typeof d === 'number' ? out[a] + d : '?'
    }
    return g.emit('Concat', xs, { axis: attr.int(a) }, [{ dtype, shape: out }])
  },
  vjp: (g, { inputs }, [dy], { axis }): Cotangents => {
    const a = axisOf(g, 'Concat', axis, dy.shape.length)
    const sizes = inputs.map((x) => x.shape[a])
    if (!sizes.every((d) => typeof d === 'number')) {
      throw new GradError(
        `${g.nodeLabel('Concat')}: the gradient needs static sizes on axis ${a}, got [${sizes}]`,
      )
    }
    return inputs.length === 1 ? [dy] : split(g, dy, { axis: a, sizes: sizes as number[] })
  },
})

/** Splits along an axis into the given sizes (returns all parts);  dx = concat of the part cotangents. */
export const splitOp = defineOp<[x: Tensor], { axis: number; sizes: readonly number[] }>({
  type: 'Split',
  forward: (g, [x], { axis, sizes }) => {
    const a = axisOf(g, 'Split', axis, x.shape.length)
    const total = sizes.reduce((s, n) => s + n, 0)
    if (!sameDim(x.shape[a], total) || sizes.some((n) => !(Number.isInteger(n) && n >= 0))) {
      shapeError(g, 'Split', `sizes [${sizes}] do not add up to dim ${a} of ${formatShape(x.shape)}`)
    }
    const outs = sizes.map((n) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? n : d)) }))
    return g.emit('Split', [x, int64s(g, sizes)], { axis: attr.int(a) }, outs)
  },
  vjp: (g, _ctx, dys, { axis }): Cotangents => [concat(g, ...dys, { axis })],
})

export function split(g: Graph, x: Tensor, attrs: { axis: number; sizes: readonly number[] }): Tensor[] {
  return splitOp.applyAll(g, [x], attrs)
}

interface SliceAttrs {
  starts: readonly number[]
  ends: readonly number[]
  axes?: readonly number[]
  steps?: readonly number[]
}

/** Resolved [start, end) per sliced axis, or undefined where the dim is only known at run time. */
function sliceRanges(g: Graph, x: Shape, { starts, ends, axes, steps }: SliceAttrs) {
  const ax = axesOf(g, 'Slice', axes ?? starts.map((_, i) => i), x.length)
  if (starts.length !== ax.length || ends.length !== ax.length || (steps && steps.length !== ax.length)) {
    shapeError(
      g,
      'Slice',
      `starts/ends/axes/steps lengths differ: ${starts.length}/${ends.length}/${ax.length}`,
    )
  }
  return ax.map((axis, i) => {
    const step = steps?.[i] ?? 1
    if (!(Number.isInteger(step) && step > 0))
      shapeError(g, 'Slice', `step ${step} must be a positive integer`)
    const n = x[axis]
    if (typeof n !== 'number') return { axis, step, n: undefined, start: starts[i], end: ends[i] }
    const clamp = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v))
    return { axis, step, n, start: clamp(starts[i]), end: clamp(ends[i]) }
  })
}

/** y = x[starts:ends:steps] on the given axes;  dx = dy padded with zeros back to x's shape. */
export const slice = defineOp<[x: Tensor], SliceAttrs>({
  type: 'Slice',
  forward: (g, [x], attrs) => {
    const ranges = sliceRanges(g, x.shape, attrs)
    const out: Dim[] = [...x.shape]
    for (const r of ranges) {
      out[r.axis] =
        r.n === undefined
          ? r.start >= 0 && r.end >= 0 && r.end < 2 ** 31
            ? Math.ceil((r.end - r.start) / r.step)
            : '?'
          : Math.max(0, Math.ceil((r.end - r.start) / r.step))
    }
    const ins = [
      x,
      int64s(g, attrs.starts),
      int64s(g, attrs.ends),
      int64s(
        g,
        ranges.map((r) => r.axis),
      ),
      ...(attrs.steps ? [int64s(g, attrs.steps)] : []),
    ]
    return g.emit('Slice', ins, {}, [{ dtype: x.dtype, shape: out }])
  },
  vjp: (g, { inputs: [x] }, [dy], attrs): Cotangents => {
    const ranges = sliceRanges(g, x.shape, attrs)
    const pads = new Array<number>(2 * x.shape.length).fill(0)
    for (const r of ranges) {
      if (r.n === undefined || r.step !== 1) {
        throw new GradError(
          `${g.nodeLabel('Slice')}: the gradient needs a static dim and step 1 on axis ${r.axis} of ${formatShape(x.shape)}`,
        )
      }
      pads[r.axis] = r.start
      pads[r.axis + x.shape.length] = r.n - Math.max(r.start, r.end)
    }
    return [pad(g, dy, { pads })]
  },
})

/** Zero padding, pads = [begin_0, …, begin_n, end_0, …, end_n];  dx = the unpadded slice of dy. */
export const pad = defineOp<[x: Tensor], { pads: readonly number[] }>({
  type: 'Pad',
  forward: (g, [x], { pads }) => {
    const r = x.shape.length
    if (pads.length !== 2 * r || pads.some((p) => p < 0))
      shapeError(g, 'Pad', `pads [${pads}] for ${formatShape(x.shape)}`)
    const out = x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + r] : d))
    return g.emit('Pad', [x, int64s(g, pads)], {}, [{ dtype: x.dtype, shape: out }])
  },
  vjp: (g, { inputs: [x] }, [dy], { pads }): Cotangents => {
    const r = x.shape.length
    const axes = x.shape.map((_, i) => i).filter((i) => pads[i] !== 0 || pads[i + r] !== 0)
    const ends = axes.map((i) => {
      const d = dy.shape[i]
      return typeof d === 'number' ? d - pads[i + r] : -pads[i + r] || 2 ** 62
    })
    return [axes.length === 0 ? dy : slice(g, dy, { starts: axes.map((i) => pads[i]), ends, axes })]
  },
})

/**
 * Hugging Face rotate_half over the last axis: (x1, x2) → (−x2, x1); `inverse` maps (x1, x2) → (x2, −x1).
 * The map is orthogonal, so dx = dy through the inverse map (one Concat instead of Pads and Adds).
 */
export const rotateHalf = defineOp<[x: Tensor], { inverse?: boolean }>({
  type: 'RotateHalf',
  forward: (g, [x], { inverse = false }) => {
    const d = x.shape[x.shape.length - 1]
    if (typeof d !== 'number' || d % 2 !== 0)
      shapeError(g, 'RotateHalf', `last dim must be static and even: ${formatShape(x.shape)}`)
    const halfShape = { dtype: x.dtype, shape: [...x.shape.slice(0, -1), d / 2] }
    const axis = attr.int(x.shape.length - 1)
    const [x1, x2] = g.emit('Split', [x, int64s(g, [d / 2, d / 2])], { axis }, [halfShape, halfShape])
    const parts = inverse
      ? [x2, g.emit('Neg', [x1], {}, [halfShape])[0]]
      : [g.emit('Neg', [x2], {}, [halfShape])[0], x1]
    return g.emit('Concat', parts, { axis }, [{ dtype: x.dtype, shape: x.shape }])
  },
  vjp: (g, _ctx, [dy], { inverse = false }): Cotangents => [rotateHalf(g, dy, { inverse: !inverse })],
})

/** y = x;  dx = dy. */
export const identity = defineOp<[x: Tensor]>({
  type: 'Identity',
  forward: (g, [x]) => g.emit('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }]),
  vjp: (_g, _ctx, [dy]): Cotangents => [dy],
})

/** y = x with no gradient flowing back (e.g. the max in a stable logsumexp). */
export const stopGradient = defineOp<[x: Tensor]>({
  type: 'StopGradient',
  forward: (g, [x]) => g.emit('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }]),
  vjp: null,
})

/** Converts the element type;  dx = dy cast back (float inputs only; integers get none). */
export const cast = defineOp<[x: Tensor], { to: DType }>({
  type: 'Cast',
  forward: (g, [x], { to }) => {
    return g.emit('Cast', [x], { to: attr.int(ONNX_DTYPE[to]) }, [{ dtype: to, shape: x.shape }])
  },
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [isFloat(x.dtype) ? cast(g, dy, { to: x.dtype }) : null],
})
