import { type Cotangents, defineOp } from '../op.ts'
import type { Tensor } from '../tensor.ts'
import { exp, mul, sub } from './elementwise.ts'
import { reduceSum } from './reduce.ts'
import { attr, axisOf, requireFloat } from './util.ts'

/** y = softmax(x) along axis;  dx = y ⊙ (dy − Σ dy ⊙ y) (reuses the output). */
export const softmax = defineOp<[x: Tensor], { axis?: number }>({
  type: 'Softmax',
  forward: (g, [x], { axis = -1 }) => {
    requireFloat(g, 'Softmax', x)
    const a = axisOf(g, 'Softmax', axis, x.shape.length)
    return g.emit('Softmax', [x], { axis: attr.int(a) }, [{ dtype: x.dtype, shape: x.shape }])
  },
  vjp: (g, { outputs: [y] }, [dy], { axis = -1 }): Cotangents => {
    const dot = reduceSum(g, mul(g, dy, y), { axes: [axis], keepdims: true })
    return [mul(g, y, sub(g, dy, dot))]
  },
})

/** y = log softmax(x) along axis;  dx = dy − exp(y) · Σ dy (reuses the output). */
export const logSoftmax = defineOp<[x: Tensor], { axis?: number }>({
  type: 'LogSoftmax',
  forward: (g, [x], { axis = -1 }) => {
    requireFloat(g, 'LogSoftmax', x)
    const a = axisOf(g, 'LogSoftmax', axis, x.shape.length)
    return g.emit('LogSoftmax', [x], { axis: attr.int(a) }, [{ dtype: x.dtype, shape: x.shape }])
  },
  vjp: (g, { outputs: [y] }, [dy], { axis = -1 }): Cotangents => [
    sub(g, dy, mul(g, exp(g, y), reduceSum(g, dy, { axes: [axis], keepdims: true }))),
  ],
})
