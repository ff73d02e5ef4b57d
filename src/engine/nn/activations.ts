import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { add, mul, sub } from '../ops/index.ts'
import { requireFloat, scalarLike } from '../ops/util.ts'
import type { Tensor } from '../tensor.ts'

/**
 * s = x · σ(x); outputs [s, σ(x)]. One op so that the backward, dx = dy · (σ + s · (1 − σ)), reuses
 * both: 4 kernels, not the 6 autodiff makes through Mul and Sigmoid. σ is output for that rule only
 * (its cotangent is ignored), so it must not leave silu. In float64 σ is 1 / (1 + e^−x): onnxruntime
 * fuses x · Sigmoid(x) into com.microsoft QuickGelu where σ has no other reader (an inference graph),
 * and that CPU kernel has no double version.
 */
const siluOp = defineOp<[x: Tensor]>({
  type: 'Silu',
  forward: (g, [x]) => {
    requireFloat(g, 'Silu', x)
    const f = [{ dtype: x.dtype, shape: x.shape }]
    let sigma: Tensor
    if (x.dtype === 'float64') {
      const [negated] = g.emit('Neg', [x], {}, f)
      const [e] = g.emit('Exp', [negated], {}, f)
      const [onePlus] = g.emit('Add', [e, scalarLike(g, x, 1)], {}, f)
      ;[sigma] = g.emit('Reciprocal', [onePlus], {}, f)
    } else [sigma] = g.emit('Sigmoid', [x], {}, f)
    return [g.emit('Mul', [x, sigma], {}, f)[0], sigma]
  },
  vjp: (g, { outputs: [s, sigma] }, [dy]): Cotangents => {
    const oneMinus = sub(g, scalarLike(g, sigma, 1), sigma)
    return [mul(g, dy, add(g, sigma, mul(g, s, oneMinus)))]
  },
})

/** SiLU (swish): x · σ(x). */
export function silu(g: Graph, x: Tensor): Tensor {
  return siluOp.applyAll(g, [x], {})[0]
}
