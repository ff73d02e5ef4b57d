import { Graph } from '../graph.ts'
import { identity } from '../ops/index.ts'
import type { DType } from '../tensor.ts'

/** y = Identity(x) for any shape of the given rank: provider probes and GPU-buffer readback. */
export function identityModel(dtype: DType, rank: number): Uint8Array {
  const g = new Graph({ name: `identity_${dtype}_${rank}` })
  const x = g.input(
    'x',
    dtype,
    Array.from({ length: rank }, (_, i) => `d${i}`),
  )
  g.output(identity(g, x), 'y')
  return g.serialize().model
}
