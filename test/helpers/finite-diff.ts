import { type DType, Graph, grad, type Tensor } from '../../src/engine/index.ts'
import { type Feed, openGraph } from './run-graph.ts'

/** Seeded uniform [0, 1) generator (mulberry32), so every check is reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export type Domain = 'real' | 'positive'

export interface InputSpec {
  shape: readonly number[]
  /** 'real': uniform(−1.5, 1.5); 'positive': uniform(0.5, 2) (Log, Sqrt, Pow bases). */
  domain?: Domain
  /** Fixed integer values (indices): not perturbed, no gradient expected. */
  ints?: readonly number[]
  /** Fixed bool values (masks). */
  bools?: readonly boolean[]
}

export interface VjpCase {
  name: string
  inputs: readonly InputSpec[]
  build: (g: Graph, xs: Tensor[]) => Tensor
  /** float64 unless the op has no float64 CPU kernel. */
  dtype?: 'float64' | 'float32'
  eps?: number
}

export interface VjpResult {
  name: string
  /** ⟨t, vjp(c)⟩ */
  lhs: number
  /** ⟨(f(x + εt) − f(x − εt)) / 2ε, c⟩ */
  rhs: number
  relErr: number
}

type FloatArray = Float32Array | Float64Array

function floats(dtype: 'float64' | 'float32', n: number, fill: (i: number) => number): FloatArray {
  const a = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = fill(i)
  return a
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1)

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i] * b[i]
  return s
}

/**
 * JAX's check_vjp identity for many cases at once, all in one graph and one session (three runs):
 * ⟨t, vjp(c)⟩ ≈ ⟨(f(x+εt) − f(x−εt)) / 2ε, c⟩ for random x, tangent t and cotangent c.
 */
export async function checkVjps(
  cases: readonly VjpCase[],
  seed = 1234,
  graph: { fusedMatMul?: boolean } = {},
): Promise<VjpResult[]> {
  const random = rng(seed)
  const g = new Graph({ name: 'vjp_check', ...graph })
  const plans = cases.map((c, k) => {
    const dtype = c.dtype ?? 'float64'
    const xs = c.inputs.map((spec, j) => {
      const dt: DType = spec.ints ? 'int64' : spec.bools ? 'bool' : dtype
      return g.input(`c${k}.x${j}`, dt, spec.shape)
    })
    const y = c.build(g, xs)
    if (!y.shape.every((d) => typeof d === 'number'))
      throw new Error(`${c.name}: output shape must be static`)
    const cot = g.input(`c${k}.cot`, y.dtype, y.shape)
    const wrt = xs.filter((_, j) => !c.inputs[j].ints && !c.inputs[j].bools)
    const grads = grad(g, y, wrt, cot)
    grads.forEach((gr, j) => {
      if (gr === null) throw new Error(`${c.name}: no gradient for input ${j}`)
      g.output(gr, `c${k}.g${j}`)
    })
    g.output(y, `c${k}.y`)
    const base: Record<string, Feed> = {}
    const tangents: Record<string, FloatArray> = {}
    c.inputs.forEach((spec, j) => {
      const name = `c${k}.x${j}`
      const n = size(spec.shape)
      if (spec.ints) base[name] = { data: BigInt64Array.from(spec.ints, (v) => BigInt(v)), dims: spec.shape }
      else if (spec.bools)
        base[name] = { data: Uint8Array.from(spec.bools, (v) => (v ? 1 : 0)), dims: spec.shape }
      else {
        const lo = spec.domain === 'positive' ? 0.5 : -1.5
        const hi = spec.domain === 'positive' ? 2 : 1.5
        base[name] = { data: floats(dtype, n, () => lo + (hi - lo) * random()), dims: spec.shape }
        tangents[name] = floats(dtype, n, () => random() * 2 - 1)
      }
    })
    if (y.dtype !== 'float64' && y.dtype !== 'float32') throw new Error(`${c.name}: output is ${y.dtype}`)
    const cotData = floats(y.dtype, size(y.shape as number[]), () => random() * 2 - 1)
    return { c, k, dtype, base, tangents, cotData, cotDims: y.shape as number[], nWrt: wrt.length }
  })
  const run = await openGraph(g)
  const feeds = (sign: number) => {
    const f: Record<string, Feed> = {}
    for (const p of plans) {
      const eps = p.c.eps ?? (p.dtype === 'float64' ? 1e-6 : 1e-2)
      for (const [name, feed] of Object.entries(p.base)) {
        const t = p.tangents[name]
        f[name] = t
          ? {
              data: floats(p.dtype, t.length, (i) => Number(feed.data[i]) + sign * eps * t[i]),
              dims: feed.dims,
            }
          : feed
      }
      f[`c${p.k}.cot`] = { data: p.cotData, dims: p.cotDims }
    }
    return f
  }
  const [at, plus, minus] = [await run(feeds(0)), await run(feeds(1)), await run(feeds(-1))]
  return plans.map((p) => {
    const eps = p.c.eps ?? (p.dtype === 'float64' ? 1e-6 : 1e-2)
    const tanNames = Object.keys(p.tangents)
    const lhs = tanNames.reduce(
      (s, name, j) => s + dot(p.tangents[name], at[`c${p.k}.g${j}`].data as FloatArray),
      0,
    )
    const yp = plus[`c${p.k}.y`].data as FloatArray
    const ym = minus[`c${p.k}.y`].data as FloatArray
    const rhs = dot(
      floats('float64', yp.length, (i) => (yp[i] - ym[i]) / (2 * eps)),
      p.cotData,
    )
    const relErr = Math.abs(lhs - rhs) / Math.max(Math.abs(lhs), Math.abs(rhs), 1e-300)
    return { name: p.c.name, lhs, rhs, relErr }
  })
}
