import type { Graph } from '../graph.ts'
import { defineOp } from '../op.ts'
import type { Tensor } from '../tensor.ts'
import { broadcastShapes, requireDType, requireSameDType } from './util.ts'

/** Elementwise comparison with broadcasting; bool result, no gradient. */
function comparison(type: string) {
  return defineOp<[a: Tensor, b: Tensor]>({
    type,
    forward: (g, [a, b]) => {
      requireSameDType(g, type, [a, b])
      return g.emit(type, [a, b], {}, [
        { dtype: 'bool', shape: broadcastShapes(g, type, [a.shape, b.shape]) },
      ])
    },
    vjp: null,
  })
}

/** a == b */
export const equal = comparison('Equal')
/** a < b */
export const less = comparison('Less')
/** a > b */
export const greater = comparison('Greater')
/** a <= b */
export const lessOrEqual = comparison('LessOrEqual')
/** a >= b */
export const greaterOrEqual = comparison('GreaterOrEqual')

function logical(type: string) {
  return defineOp<[a: Tensor, b: Tensor]>({
    type,
    forward: (g, [a, b]) => {
      requireDType(g, type, a, ['bool'])
      requireDType(g, type, b, ['bool'])
      return g.emit(type, [a, b], {}, [
        { dtype: 'bool', shape: broadcastShapes(g, type, [a.shape, b.shape]) },
      ])
    },
    vjp: null,
  })
}

/** a ∧ b (bool) */
export const and = logical('And')
/** a ∨ b (bool) */
export const or = logical('Or')

/** ¬x (bool) */
export const not = defineOp<[x: Tensor]>({
  type: 'Not',
  forward: (g: Graph, [x]) => {
    requireDType(g, 'Not', x, ['bool'])
    return g.emit('Not', [x], {}, [{ dtype: 'bool', shape: x.shape }])
  },
  vjp: null,
})
