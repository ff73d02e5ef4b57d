import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import type { Tensor } from '../tensor.ts'
import { and, equal, greater, greaterOrEqual, less, lessOrEqual } from './compare.ts'
import { broadcastShapes, requireDType, requireFloat, requireSameDType, scalarLike } from './util.ts'

type Binary = [a: Tensor, b: Tensor]
type Unary = [x: Tensor]

function emitBinary(g: Graph, type: string, a: Tensor, b: Tensor): Tensor[] {
  const dtype = requireSameDType(g, type, [a, b])
  return g.emit(type, [a, b], {}, [{ dtype, shape: broadcastShapes(g, type, [a.shape, b.shape]) }])
}

function emitUnary(g: Graph, type: string, x: Tensor, float = true): Tensor {
  if (float) requireFloat(g, type, x)
  return g.emit(type, [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0]
}

/** y = a + b;  da = dy, db = dy (grad() unbroadcasts). */
export const add = defineOp<Binary>({
  type: 'Add',
  forward: (g, [a, b]) => emitBinary(g, 'Add', a, b),
  vjp: (_g, _ctx, [dy]): Cotangents => [dy, dy],
})

/** y = a − b;  da = dy, db = −dy. */
export const sub = defineOp<Binary>({
  type: 'Sub',
  forward: (g, [a, b]) => emitBinary(g, 'Sub', a, b),
  vjp: (g, _ctx, [dy]): Cotangents => [dy, () => neg(g, dy)],
})

/** y = a · b;  da = dy · b, db = dy · a. */
export const mul = defineOp<Binary>({
  type: 'Mul',
  forward: (g, [a, b]) => emitBinary(g, 'Mul', a, b),
  vjp: (g, { inputs: [a, b] }, [dy]): Cotangents => [() => mul(g, dy, b), () => mul(g, dy, a)],
})

/** y = a / b;  da = dy / b, db = −dy · y / b. */
export const div = defineOp<Binary>({
  type: 'Div',
  forward: (g, [a, b]) => emitBinary(g, 'Div', a, b),
  vjp: (g, { inputs: [, b], outputs: [y] }, [dy]): Cotangents => [
    () => div(g, dy, b),
    () => neg(g, div(g, mul(g, dy, y), b)),
  ],
})

/** y = aᵇ;  da = dy · b · aᵇ⁻¹, db = dy · y · log a. */
export const pow = defineOp<Binary>({
  type: 'Pow',
  forward: (g, [a, b]) => {
    requireFloat(g, 'Pow', a)
    return emitBinary(g, 'Pow', a, b)
  },
  vjp: (g, { inputs: [a, b], outputs: [y] }, [dy]): Cotangents => [
    () => mul(g, dy, mul(g, b, pow(g, a, sub(g, b, scalarLike(g, b, 1))))),
    () => mul(g, dy, mul(g, y, log(g, a))),
  ],
})

/**
 * Ties split the cotangent evenly between a and b (as JAX does), so the rule is symmetric.
 * `wins(a, b)` is the mask where a alone is selected.
 */
function minMaxVjp(
  g: Graph,
  a: Tensor,
  b: Tensor,
  dy: Tensor,
  wins: (x: Tensor, y: Tensor) => Tensor,
): Tensor[] {
  const zero = scalarLike(g, dy, 0)
  const half = mul(g, dy, scalarLike(g, dy, 0.5))
  const tie = equal(g, a, b)
  return [
    where(g, wins(a, b), dy, where(g, tie, half, zero)),
    where(g, wins(b, a), dy, where(g, tie, half, zero)),
  ]
}

/** y = min(a, b);  the cotangent goes to the smaller input (split on ties). */
export const min = defineOp<Binary>({
  type: 'Min',
  forward: (g, [a, b]) => emitBinary(g, 'Min', a, b),
  vjp: (g, { inputs: [a, b] }, [dy]): Cotangents => minMaxVjp(g, a, b, dy, (x, y) => less(g, x, y)),
})

/** y = max(a, b);  the cotangent goes to the larger input (split on ties). */
export const max = defineOp<Binary>({
  type: 'Max',
  forward: (g, [a, b]) => emitBinary(g, 'Max', a, b),
  vjp: (g, { inputs: [a, b] }, [dy]): Cotangents => minMaxVjp(g, a, b, dy, (x, y) => greater(g, x, y)),
})

/** y = cond ? a : b;  da = cond ? dy : 0, db = cond ? 0 : dy; the condition gets none. */
export const where = defineOp<[cond: Tensor, a: Tensor, b: Tensor]>({
  type: 'Where',
  forward: (g, [cond, a, b]) => {
    requireDType(g, 'Where', cond, ['bool'])
    const dtype = requireSameDType(g, 'Where', [a, b])
    const shape = broadcastShapes(g, 'Where', [cond.shape, a.shape, b.shape])
    return g.emit('Where', [cond, a, b], {}, [{ dtype, shape }])
  },
  vjp: (g, { inputs: [cond] }, [dy]): Cotangents => [
    null,
    () => where(g, cond, dy, scalarLike(g, dy, 0)),
    () => where(g, cond, scalarLike(g, dy, 0), dy),
  ],
})

/** y = clip(x, min, max) with constant bounds;  dx = dy where min ≤ x ≤ max, else 0. */
export const clip = defineOp<Unary, { min?: number; max?: number }>({
  type: 'Clip',
  forward: (g, [x], { min: lo, max: hi }) => {
    requireFloat(g, 'Clip', x)
    const bounds = [
      lo === undefined ? undefined : scalarLike(g, x, lo),
      hi === undefined ? undefined : scalarLike(g, x, hi),
    ]
    return g.emit('Clip', [x, ...bounds], {}, [{ dtype: x.dtype, shape: x.shape }])
  },
  vjp: (g, { inputs: [x] }, [dy], { min: lo, max: hi }): Cotangents => {
    const above = lo === undefined ? undefined : greaterOrEqual(g, x, scalarLike(g, x, lo))
    const below = hi === undefined ? undefined : lessOrEqual(g, x, scalarLike(g, x, hi))
    const inside = above && below ? and(g, above, below) : (above ?? below)
    return [inside ? where(g, inside, dy, scalarLike(g, dy, 0)) : dy]
  },
})

/** y = −x;  dx = −dy. */
export const neg = defineOp<Unary>({
  type: 'Neg',
  forward: (g, [x]) => [emitUnary(g, 'Neg', x, false)],
  vjp: (g, _ctx, [dy]): Cotangents => [neg(g, dy)],
})

/** y = |x|;  dx = dy · sign(x) (dy at 0). */
export const abs = defineOp<Unary>({
  type: 'Abs',
  forward: (g, [x]) => [emitUnary(g, 'Abs', x, false)],
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [where(g, less(g, x, scalarLike(g, x, 0)), neg(g, dy), dy)],
})

/** y = √x;  dx = dy / (2y) (reuses the output). */
export const sqrt = defineOp<Unary>({
  type: 'Sqrt',
  forward: (g, [x]) => [emitUnary(g, 'Sqrt', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [div(g, mul(g, dy, scalarLike(g, y, 0.5)), y)],
})

/** y = 1/x;  dx = −dy · y². */
export const reciprocal = defineOp<Unary>({
  type: 'Reciprocal',
  forward: (g, [x]) => [emitUnary(g, 'Reciprocal', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [neg(g, mul(g, dy, mul(g, y, y)))],
})

/** y = exp(x);  dx = dy · y (reuses the output). */
export const exp = defineOp<Unary>({
  type: 'Exp',
  forward: (g, [x]) => [emitUnary(g, 'Exp', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [mul(g, dy, y)],
})

/** y = log(x);  dx = dy / x. */
export const log = defineOp<Unary>({
  type: 'Log',
  forward: (g, [x]) => [emitUnary(g, 'Log', x)],
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [div(g, dy, x)],
})

/** y = σ(x);  dx = dy · y · (1 − y). */
export const sigmoid = defineOp<Unary>({
  type: 'Sigmoid',
  forward: (g, [x]) => [emitUnary(g, 'Sigmoid', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [mul(g, mul(g, dy, y), sub(g, scalarLike(g, y, 1), y))],
})

/** y = tanh(x);  dx = dy · (1 − y²). */
export const tanh = defineOp<Unary>({
  type: 'Tanh',
  forward: (g, [x]) => [emitUnary(g, 'Tanh', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [mul(g, dy, sub(g, scalarLike(g, y, 1), mul(g, y, y)))],
})

/** y = max(x, 0);  dx = dy where y > 0 (reuses the output). */
export const relu = defineOp<Unary>({
  type: 'Relu',
  forward: (g, [x]) => [emitUnary(g, 'Relu', x)],
  vjp: (g, { outputs: [y] }, [dy]): Cotangents => [
    where(g, greater(g, y, scalarLike(g, y, 0)), dy, scalarLike(g, dy, 0)),
  ],
})

/** y = cos(x);  dx = −dy · sin(x). */
export const cos = defineOp<Unary>({
  type: 'Cos',
  forward: (g, [x]) => [emitUnary(g, 'Cos', x)],
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [neg(g, mul(g, dy, sin(g, x)))],
})

/** y = sin(x);  dx = dy · cos(x). */
export const sin = defineOp<Unary>({
  type: 'Sin',
  forward: (g, [x]) => [emitUnary(g, 'Sin', x)],
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [mul(g, dy, cos(g, x))],
})

/** y = erf(x);  dx = dy · 2/√π · exp(−x²). */
export const erf = defineOp<Unary>({
  type: 'Erf',
  forward: (g, [x]) => [emitUnary(g, 'Erf', x)],
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [
    mul(g, mul(g, dy, scalarLike(g, x, 2 / Math.sqrt(Math.PI))), exp(g, neg(g, mul(g, x, x)))),
  ],
})

/**
 * Exact GELU, y = x · Φ(x) with Φ(x) = ½(1 + erf(x/√2)), emitted as Erf arithmetic (opset 18 has no
 * Gelu);  dx = dy · (Φ(x) + x · φ(x)), φ(x) = exp(−x²/2)/√(2π).
 */
export const gelu = defineOp<Unary>({
  type: 'Gelu',
  forward: (g, [x]) => {
    requireFloat(g, 'Gelu', x)
    const f = { dtype: x.dtype, shape: x.shape }
    const [scaled] = g.emit('Mul', [x, scalarLike(g, x, Math.SQRT1_2)], {}, [f])
    const [e] = g.emit('Erf', [scaled], {}, [f])
    const [onePlus] = g.emit('Add', [e, scalarLike(g, x, 1)], {}, [f])
    const [halfX] = g.emit('Mul', [x, scalarLike(g, x, 0.5)], {}, [f])
    return g.emit('Mul', [halfX, onePlus], {}, [f])
  },
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => {
    const cdf = mul(
      g,
      add(g, erf(g, mul(g, x, scalarLike(g, x, Math.SQRT1_2))), scalarLike(g, x, 1)),
      scalarLike(g, x, 0.5),
    )
    const pdf = mul(
      g,
      exp(g, mul(g, mul(g, x, x), scalarLike(g, x, -0.5))),
      scalarLike(g, x, 1 / Math.sqrt(2 * Math.PI)),
    )
    return [mul(g, dy, add(g, cdf, mul(g, x, pdf)))]
  },
})

/**
 * y = log(1 + eˣ) in the stable form relu(x) + log(1 + exp(−|x|));  dx = dy · σ(x).
 */
export const softplus = defineOp<Unary>({
  type: 'Softplus',
  forward: (g, [x]) => {
    requireFloat(g, 'Softplus', x)
    const f = { dtype: x.dtype, shape: x.shape }
    const [r] = g.emit('Relu', [x], {}, [f])
    const [a] = g.emit('Abs', [x], {}, [f])
    const [na] = g.emit('Neg', [a], {}, [f])
    const [e] = g.emit('Exp', [na], {}, [f])
    const [onePlus] = g.emit('Add', [e, scalarLike(g, x, 1)], {}, [f])
    const [l] = g.emit('Log', [onePlus], {}, [f])
    return g.emit('Add', [r, l], {}, [f])
  },
  vjp: (g, { inputs: [x] }, [dy]): Cotangents => [mul(g, dy, sigmoid(g, x))],
})
