import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  add,
  defineOp,
  exp,
  Graph,
  gather,
  gatherElements,
  grad,
  logSoftmax,
  matMul,
  mul,
  neg,
  reduceMean,
  reduceSum,
  relu,
  stopGradient,
  type Tensor,
} from '../../src/engine/index.ts'
import { GradError } from '../../src/errors.ts'
import { checkVjps } from '../helpers/finite-diff.ts'
import { runGraph } from '../helpers/run-graph.ts'

/** Mean negative log-likelihood of a 2-layer MLP: the prototype's model, built with the engine. */
function mlpLoss(g: Graph, [x, w1, b1, w2, b2, y]: Tensor[]): Tensor {
  const h = relu(g, add(g, matMul(g, x, w1), b1)) // (B, H)
  const logp = logSoftmax(g, add(g, matMul(g, h, w2), b2), { axis: -1 }) // (B, C)
  return neg(g, reduceMean(g, gatherElements(g, logp, y, { axis: 1 })))
}

describe('grad', () => {
  it('matches central finite differences on an MLP in float64', async () => {
    const [r] = await checkVjps([
      {
        name: 'mlp',
        inputs: [
          { shape: [4, 5] },
          { shape: [5, 8] },
          { shape: [8] },
          { shape: [8, 3] },
          { shape: [3] },
          { shape: [4, 1], ints: [0, 2, 1, 2] },
        ],
        build: mlpLoss,
      },
    ])
    assert.ok(r.relErr < 1e-6, `relative error ${r.relErr} (lhs ${r.lhs}, rhs ${r.rhs})`)
  })

  it('returns null for unused parameters and passes nothing through stopGradient', () => {
    const g = new Graph()
    const a = g.input('a', 'float64', [3])
    const b = g.input('b', 'float64', [3])
    const unused = g.input('unused', 'float64', [3])
    const loss = reduceMean(g, mul(g, a, stopGradient(g, b)))
    const [da, db, du] = grad(g, loss, [a, b, unused])
    assert.ok(da)
    assert.equal(db, null)
    assert.equal(du, null)
  })

  it('sums fan-out: d/dx (x·x + exp(x)) = 2x + exp(x)', async () => {
    const g = new Graph()
    const x = g.input('x', 'float64', [4])
    const y = add(g, mul(g, x, x), exp(g, x))
    const [dx] = grad(g, reduceMean(g, y), [x])
    g.output(dx!, 'dx')
    const xs = [0.1, -0.5, 1.2, 2]
    const out = await runGraph(g, { x: { data: Float64Array.from(xs), dims: [4] } })
    const got = Array.from(out.dx.data as Float64Array)
    for (const [i, v] of xs.entries()) assert.ok(Math.abs(got[i] - (2 * v + Math.exp(v)) / 4) < 1e-12)
  })

  it('differentiates its own backward pass: d²/dx² x³ = 6x', async () => {
    const g = new Graph()
    const x = g.input('x', 'float64', [3])
    const [dx] = grad(g, reduceSum(g, mul(g, mul(g, x, x), x)), [x])
    const [ddx] = grad(g, reduceSum(g, dx!), [x])
    g.output(ddx!, 'ddx')
    const out = await runGraph(g, { x: { data: Float64Array.of(0.5, -2, 3), dims: [3] } })
    assert.deepEqual(Array.from(out.ddx.data as Float64Array), [3, -12, 18])
  })

  it('gives integer inputs no gradient', () => {
    const g = new Graph()
    const table = g.input('table', 'float64', [5, 2])
    const ids = g.input('ids', 'int64', [3])
    const [dt, di] = grad(g, reduceSum(g, gather(g, table, ids)), [table, ids])
    assert.ok(dt)
    assert.equal(di, null)
  })

  it('throws GradError naming the op when a rule returns the wrong number of cotangents', () => {
    const broken = defineOp<[a: Tensor, b: Tensor]>({
      type: 'BrokenAdd',
      forward: (g, [a, b]) => g.emit('Add', [a, b], {}, [{ dtype: a.dtype, shape: a.shape }]),
      vjp: (_g, _ctx, [dy]) => [dy],
    })
    const g = new Graph()
    const a = g.input('a', 'float64', [2])
    const y = g.scope('block', () => broken(g, a, a))
    assert.throws(
      () => grad(g, reduceSum(g, y), [a]),
      (e: unknown) =>
        e instanceof GradError && e.message === 'block/BrokenAdd: VJP returned 1 cotangents for 2 inputs',
    )
  })
})
