import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { cast, concat, cos, mul, rotateHalf, sin, unsqueeze } from '../ops/index.ts'
import { attr, broadcastShapes, int64s, requireSameDType, shapeError } from '../ops/util.ts'
import { type FloatDType, formatShape, type Tensor } from '../tensor.ts'

const signedSins = new WeakMap<Graph, Map<string, Tensor>>()

/**
 * s̃ = sin · (−1 on the first half, +1 on the second), so that rotate_half(x) · sin = swap(x) · s̃.
 * One raw node per graph and table, shared by all layers and checkpoint recomputes; it needs no
 * tape entry, as rotary's VJP gives the sin cotangent itself.
 */
function signedSin(g: Graph, sinT: Tensor, d: number): Tensor {
  const cache = signedSins.get(g) ?? new Map<string, Tensor>()
  signedSins.set(g, cache)
  let signed = cache.get(sinT.name)
  if (!signed) {
    const sign = g.constant(
      Array.from({ length: d }, (_, i) => (i < d / 2 ? -1 : 1)),
      sinT.dtype,
      [d],
    )
    signed = g.withScopePath('rotary_sin', () =>
      g.emit('Mul', [sinT, sign], {}, [{ dtype: sinT.dtype, shape: sinT.shape }]),
    )[0]
    cache.set(sinT.name, signed)
  }
  return signed
}

/**
 * (x1, x2) → (x2, x1) over the last axis (size d). Graphs for WebGPU (built without FusedMatMul)
 * are bound by kernel dispatch: one Gather. onnxruntime's CPU Gather copies element by element
 * (114 ms of the 10m model's DPO step against 14 ms for Split and Concat): two copies there.
 */
function swapHalves(g: Graph, t: Tensor, d: number): Tensor {
  const axis = attr.int(t.shape.length - 1)
  const out = [{ dtype: t.dtype, shape: t.shape }]
  if (!g.fusedMatMul) {
    const order = int64s(
      g,
      Array.from({ length: d }, (_, i) => (i + d / 2) % d),
    )
    return g.emit('Gather', [t, order], { axis }, out)[0]
  }
  const half = { dtype: t.dtype, shape: [...t.shape.slice(0, -1), d / 2] }
  const [x1, x2] = g.emit('Split', [t, int64s(g, [d / 2, d / 2])], { axis }, [half, half])
  return g.emit('Concat', [x2, x1], { axis }, out)[0]
}

/**
 * y = x · cos + rotate_half(x) · sin = x · cos + swap(x) · s̃ (Slices, Neg and Concat before). swap is
 * its own transpose, so the `transpose` form y = x · cos + swap(x · s̃) is the x-VJP of the plain one
 * and vice versa: 4 kernels each way on WebGPU.
 * dcos = dy · x; dsin = dy · rotate_half(x), or x · rotate_half(dy) when transposed.
 */
const rotary = defineOp<[x: Tensor, cos: Tensor, sin: Tensor], { transpose?: boolean }>({
  type: 'Rotary',
  forward: (g, [x, cosT, sinT], { transpose = false }) => {
    const dtype = requireSameDType(g, 'Rotary', [x, cosT, sinT])
    const d = x.shape[x.shape.length - 1]
    if (typeof d !== 'number' || d % 2 !== 0 || cosT.shape.at(-1) !== d || sinT.shape.at(-1) !== d) {
      shapeError(
        g,
        'Rotary',
        `last dims must be the same static even size: ${[x, cosT, sinT].map((t) => formatShape(t.shape)).join(', ')}`,
      )
    }
    const emit = (type: string, a: Tensor, b: Tensor) =>
      g.emit(type, [a, b], {}, [{ dtype, shape: broadcastShapes(g, 'Rotary', [a.shape, b.shape]) }])[0]
    const swap = (t: Tensor) => swapHalves(g, t, d)
    const signed = signedSin(g, sinT, d)
    const rotated = transpose ? swap(emit('Mul', x, signed)) : emit('Mul', swap(x), signed)
    return [emit('Add', emit('Mul', x, cosT), rotated)]
  },
  vjp: (g, { inputs: [x, cosT, sinT] }, [dy], { transpose = false }): Cotangents => [
    () => rotary(g, dy, cosT, sinT, { transpose: !transpose }),
    () => mul(g, dy, x),
    () => (transpose ? mul(g, x, rotateHalf(g, dy)) : mul(g, dy, rotateHalf(g, x))),
  ],
})

/** Rotary position embedding, rotate-half convention: x · cos + rotate_half(x) · sin (cos/sin broadcast to x). */
export function applyRotary(g: Graph, x: Tensor, cosT: Tensor, sinT: Tensor): Tensor {
  return g.scope('rotary', () => rotary(g, x, cosT, sinT))
}

export interface RotaryOptions {
  headDim: number
  /** rope_theta */
  theta: number
  dtype: FloatDType
}

/**
 * cos and sin tables for int64 positions of shape (…, T): each (…, T, headDim), with the
 * frequencies inv_freq[i] = θ^(−2i/d) repeated over both halves (as Hugging Face's rotary embedding).
 */
export function rotaryCosSin(g: Graph, positions: Tensor, opts: RotaryOptions): { cos: Tensor; sin: Tensor } {
  return g.scope('rotary_emb', () => {
    const half = opts.headDim / 2
    const invFreq = Array.from({ length: half }, (_, i) => opts.theta ** (-(2 * i) / opts.headDim))
    const freq = g.constant(invFreq, 'float32', [half])
    const pos = unsqueeze(g, cast(g, positions, { to: 'float32' }), { axes: [-1] }) // (…, T, 1)
    const angles = mul(g, pos, freq) // (…, T, D/2)
    const emb = concat(g, angles, angles, { axis: -1 }) // (…, T, D)
    const toDType = (t: Tensor) => (opts.dtype === 'float32' ? t : cast(g, t, { to: opts.dtype }))
    return { cos: toDType(cos(g, emb)), sin: toDType(sin(g, emb)) }
  })
}
