/**
 * Whether a provider runs float16 compute on the device: onnxruntime's WebGPU provider registers
 * its float16 kernels only when the adapter has the shader-f16 feature, and otherwise places such
 * nodes on the CPU, silently. A small float16 forward and backward with the op types of a
 * mixed-precision decoder is placed once per provider and process, beside its float32 twin: a node
 * the float16 graph leaves off the device where the float32 one keeps it there fails the check
 * (both leave a few int64 index computations to the CPU, by onnxruntime's own choice).
 */
import { grad } from '../autodiff.ts'
import { Graph, type SerializedGraph } from '../graph.ts'
import { applyRotary } from '../nn/rotary.ts'
import {
  add,
  cast,
  gather,
  matMul,
  mul,
  reduceSum,
  reshape,
  rotateHalf,
  sigmoid,
  softmax,
  sub,
  transpose,
  unsqueeze,
} from '../ops/index.ts'
import { misplacedNodes, nodePlacement } from './placement.ts'
import type { Provider } from './providers.ts'

function probe(compute: 'float16' | 'float32'): SerializedGraph {
  const g = new Graph({ name: `${compute}_probe`, fusedMatMul: false })
  const x = cast(g, g.input('x', 'float32', [2, 3, 4]), { to: compute })
  const w32 = g.input('w', 'float32', [4, 4])
  const w = cast(g, w32, { to: compute })
  const rows = unsqueeze(g, gather(g, w, g.input('ids', 'int64', [2])), { axes: [1] }) // (2, 1, 4)
  let y = add(g, matMul(g, x, w), rows)
  y = mul(g, y, sigmoid(g, y))
  y = sub(g, applyRotary(g, y, rows, rows), rotateHalf(g, y))
  y = softmax(g, transpose(g, y, { perm: [0, 2, 1] }), { axis: -1 })
  const loss = reduceSum(g, cast(g, reshape(g, mul(g, y, y), { shape: [2, 12] }), { to: 'float32' }))
  g.output(loss, 'loss')
  g.output(grad(g, loss, [w32])[0]!, 'grad')
  return g.serialize()
}

const verdicts = new Map<Provider, Promise<string | undefined>>()

/** Why `provider` cannot compute in float16 (the nodes it leaves to the CPU), or undefined when it can. */
export function float16Unsupported(provider: Provider): Promise<string | undefined> {
  let verdict = verdicts.get(provider)
  if (verdict === undefined) {
    const offDevice = async (compute: 'float16' | 'float32') =>
      misplacedNodes(await nodePlacement(probe(compute), provider), provider)
    verdict = Promise.all([offDevice('float16'), offDevice('float32')]).then(
      ([half, single]) => {
        const off = half.filter((n) => !single.some((s) => s.name === n.name))
        if (off.length === 0) return undefined
        return `${off.length} float16 nodes run off the device (${[...new Set(off.map((n) => n.op))].join(', ')})`
      },
      (err: Error) => err.message,
    )
    verdicts.set(provider, verdict)
  }
  return verdict
}
