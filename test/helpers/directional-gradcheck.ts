import { createGraphSession, type Graph, grad, type HostTensor, type Tensor } from '../../src/engine/index.ts'
import type { Random } from '../../src/model/random.ts'
import type { FloatTensor } from '../../src/model/weights.ts'

export interface DirectionalCheck {
  /** ⟨∇loss, t⟩ from the graph's own gradient outputs. */
  analytic: number
  /** (loss(x + εt) − loss(x − εt)) / 2ε, run through the same session. */
  numeric: number
}

/**
 * Central differences in float64 along one random direction t of every parameter at once:
 * ⟨∇f, t⟩ ≈ (f(x + εt) − f(x − εt)) / 2ε. Adds the loss and its gradients w.r.t. `params` as
 * outputs of `g`, feeds each parameter from `values` (same key) and the tangent from `rng`.
 */
export async function directionalCheck(
  g: Graph,
  loss: Tensor,
  params: Map<string, Tensor>,
  opts: {
    name: string
    feeds: Record<string, HostTensor>
    values: Map<string, FloatTensor>
    rng: Random
    eps?: number
  },
): Promise<DirectionalCheck> {
  const { feeds, values, rng } = opts
  g.output(loss, 'loss')
  const keys = [...params.keys()]
  for (const [i, t] of grad(g, loss, [...params.values()]).entries()) g.output(t!, `grad.${keys[i]}`)
  const session = await createGraphSession(g.serialize(), { provider: 'cpu', name: opts.name })

  const base = new Map(keys.map((k) => [k, Float64Array.from(values.get(k)!.data)]))
  const tangent = new Map(keys.map((k) => [k, base.get(k)!.map(() => rng.normal())]))
  const at = (eps: number): Record<string, HostTensor> => {
    const f = { ...feeds }
    for (const k of keys) {
      const x = base.get(k)!
      const t = tangent.get(k)!
      f[k] = { dtype: 'float64', dims: values.get(k)!.shape, data: x.map((v, i) => v + eps * t[i]) }
    }
    return f
  }
  const out = await session.run(at(0))
  let analytic = 0
  for (const k of keys) {
    const gk = out[`grad.${k}`].data as Float64Array
    const t = tangent.get(k)!
    for (let i = 0; i < t.length; i++) analytic += gk[i] * t[i]
  }
  const eps = opts.eps ?? 1e-5
  const plus = Number((await session.run(at(eps), ['loss'])).loss.data[0])
  const minus = Number((await session.run(at(-eps), ['loss'])).loss.data[0])
  await session.release()
  return { analytic, numeric: (plus - minus) / (2 * eps) }
}
