import type { Graph } from '../graph.ts'
import { add, gather, lessOrEqual, range, shape, sub, unsqueeze, where } from '../ops/index.ts'
import type { DType, Tensor } from '../tensor.ts'

/** The most negative finite value of each float type: masked scores that stay NaN-free in softmax. */
const LOWEST: Readonly<Record<string, number>> = {
  float16: -65504,
  float32: -3.4028234663852886e38,
  float64: -Number.MAX_VALUE,
}

export function lowestValue(dtype: DType): number {
  const v = LOWEST[dtype]
  if (v === undefined) throw new Error(`no lowest value for ${dtype}`)
  return v
}

/**
 * Causal mask for scores (…, Tq, Tk): allowed[i][j] = j ≤ i + (Tk − Tq), i.e. a query sees every key
 * up to its own position when the last Tq of Tk positions are the queries (decode with a cache).
 * A constant for static lengths, else built from the scores' runtime shape.
 */
export function causalMask(g: Graph, scores: Tensor): Tensor {
  return g.scope('causal_mask', () => {
    const r = scores.shape.length
    const tq = scores.shape[r - 2]
    const tk = scores.shape[r - 1]
    if (typeof tq === 'number' && typeof tk === 'number') {
      const allowed = new Uint8Array(tq * tk)
      for (let i = 0; i < tq; i++)
        for (let j = 0; j <= Math.min(tk - 1, i + tk - tq); j++) allowed[i * tk + j] = 1
      return g.constant(allowed, 'bool', [tq, tk])
    }
    const dims = shape(g, scores)
    const at = (i: number) => gather(g, dims, g.constant(BigInt64Array.of(BigInt(i)), 'int64', []))
    const [q, k] = [at(r - 2), at(r - 1)]
    const zero = g.constant(BigInt64Array.of(0n), 'int64', [])
    const one = g.constant(BigInt64Array.of(1n), 'int64', [])
    const rows = unsqueeze(g, add(g, range(g, zero, q, one), sub(g, k, q)), { axes: [1] }) // (Tq, 1)
    const cols = unsqueeze(g, range(g, zero, k, one), { axes: [0] }) // (1, Tk)
    return lessOrEqual(g, cols, rows) // (Tq, Tk)
  })
}

/** Scores with future positions replaced by the lowest finite value (Where: masked entries get no gradient). */
export function applyCausalMask(g: Graph, scores: Tensor): Tensor {
  return where(g, causalMask(g, scores), scores, g.constant(lowestValue(scores.dtype), scores.dtype))
}
