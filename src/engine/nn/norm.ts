import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { cast, mul, reduceMean, sub } from '../ops/index.ts'
import { attr, axisOf, int64s, requireFloat, scalarLike } from '../ops/util.ts'
import type { Tensor } from '../tensor.ts'

/**
 * n = x · r with r = 1/√(mean(x², last axis) + eps), (…, 1); outputs [n, r]. One op so that the
 * backward is dx = r · (dn − n · mean(dn · n)): 5 kernels, not the 14 autodiff makes through the
 * primitives. r is output for that rule only: its cotangent is ignored, so it must not leave
 * rmsNorm (grad()'s zero fill for it then goes unused and is pruned).
 */
const rmsNormalize = defineOp<[x: Tensor], { eps: number }>({
  type: 'RmsNormalize',
  forward: (g, [x], { eps }) => {
    requireFloat(g, 'RmsNormalize', x)
    const f = { dtype: x.dtype, shape: x.shape }
    const stat = { dtype: x.dtype, shape: [...x.shape.slice(0, -1), 1] }
    const [square] = g.emit('Mul', [x, x], {}, [f])
    const axis = axisOf(g, 'RmsNormalize', -1, x.shape)
    const [meanSquare] = g.emit('ReduceMean', [square, int64s(g, [axis])], { keepdims: attr.int(1) }, [stat])
    const [shifted] = g.emit('Add', [meanSquare, scalarLike(g, x, eps)], {}, [stat])
    const [root] = g.emit('Sqrt', [shifted], {}, [stat])
    const [r] = g.emit('Reciprocal', [root], {}, [stat])
    return [g.emit('Mul', [x, r], {}, [f])[0], r]
  },
  vjp: (g, { outputs: [n, r] }, [dn]): Cotangents => {
    const m = reduceMean(g, mul(g, dn, n), { axes: [-1], keepdims: true })
    return [mul(g, r, sub(g, dn, mul(g, n, m)))]
  },
})

/**
 * Llama RMSNorm: weight · x / √(mean(x², last axis) + eps). As in Hugging Face, the statistics are
 * computed in float32 when x is float16 and the normalized value is cast back before the weight.
 */
export function rmsNorm(g: Graph, x: Tensor, weight: Tensor, eps: number): Tensor {
  return g.scope('rms_norm', () => {
    const xf = x.dtype === 'float16' ? cast(g, x, { to: 'float32' }) : x
    const [normed] = rmsNormalize.applyAll(g, [xf], { eps })
    return mul(g, weight, x.dtype === 'float16' ? cast(g, normed, { to: 'float16' }) : normed)
  })
}
