import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import {
  abs,
  add,
  cast,
  clip,
  concat,
  cos,
  type DifferentiableOp,
  div,
  erf,
  exp,
  expand,
  expandDynamic,
  fusedMatMul,
  gather,
  gatherElements,
  gatherND,
  gelu,
  gemm,
  identity,
  log,
  logSoftmax,
  matMul,
  max,
  min,
  mul,
  neg,
  OPS,
  pad,
  pow,
  reciprocal,
  reduceMax,
  reduceMean,
  reduceSum,
  relu,
  reshape,
  reshapeDynamic,
  rotateHalf,
  scatterElementsAdd,
  scatterNDAdd,
  sigmoid,
  sin,
  slice,
  softmax,
  softplus,
  split,
  sqrt,
  squeeze,
  sub,
  tanh,
  transpose,
  unsqueeze,
  where,
} from '../../src/engine/index.ts'
import { checkVjps, type VjpCase, type VjpResult } from '../helpers/finite-diff.ts'

interface GradSpec {
  cases: Omit<VjpCase, 'name'>[]
  /** Bound on the relative error of the VJP identity; 1e-6 for float64. */
  tol?: number
}

/** Relative error bound for float64 central differences with ε = 1e-6 (truncation ~ε², rounding ~1e-10). */
const F64_TOL = 1e-6
/**
 * float32 cases (no float64 kernel in onnxruntime's CPU provider, or the op is a float32 cast):
 * ε = 1e-2 gives truncation ~ε² ≈ 1e-4 and float32 rounding ~1e-5, hence 5e-3.
 */
const F32_TOL = 5e-3

const ints = (shape: number[], values: number[]) => ({ shape, ints: values })

/** One entry per differentiable op: a missing entry does not compile. Shapes include broadcasting. */
const GRAD_SPECS: { [K in DifferentiableOp]: GradSpec } = {
  Add: {
    cases: [
      { inputs: [{ shape: [2, 3] }, { shape: [3] }], build: (g, [a, b]) => add(g, a, b) },
      { inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], build: (g, [a, b]) => add(g, a, b) },
    ],
  },
  Sub: {
    cases: [
      { inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], build: (g, [a, b]) => sub(g, a, b) },
      { inputs: [{ shape: [] }, { shape: [3] }], build: (g, [a, b]) => sub(g, a, b) },
    ],
  },
  Mul: {
    cases: [
      { inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], build: (g, [a, b]) => mul(g, a, b) },
      { inputs: [{ shape: [3, 1] }, { shape: [1, 3] }], build: (g, [a, b]) => mul(g, a, b) },
      // the same tensor on both sides: fan-out into one op
      { inputs: [{ shape: [4] }], build: (g, [a]) => mul(g, a, a) },
    ],
  },
  Div: {
    cases: [
      { inputs: [{ shape: [2, 3] }, { shape: [3], domain: 'positive' }], build: (g, [a, b]) => div(g, a, b) },
    ],
  },
  Pow: {
    cases: [
      { inputs: [{ shape: [2, 3], domain: 'positive' }, { shape: [3] }], build: (g, [a, b]) => pow(g, a, b) },
    ],
  },
  Min: { cases: [{ inputs: [{ shape: [2, 3] }, { shape: [3] }], build: (g, [a, b]) => min(g, a, b) }] },
  Max: { cases: [{ inputs: [{ shape: [2, 3] }, { shape: [1, 3] }], build: (g, [a, b]) => max(g, a, b) }] },
  Where: {
    cases: [
      {
        inputs: [
          { shape: [2, 3], bools: [true, false, true, false, false, true] },
          { shape: [2, 3] },
          { shape: [3] },
        ],
        build: (g, [c, a, b]) => where(g, c, a, b),
      },
    ],
  },
  Clip: {
    cases: [
      { inputs: [{ shape: [3, 4] }], build: (g, [x]) => clip(g, x, { min: -0.5, max: 0.7 }) },
      { inputs: [{ shape: [5] }], build: (g, [x]) => clip(g, x, { min: 0 }) },
    ],
  },
  Neg: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => neg(g, x) }] },
  Abs: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => abs(g, x) }] },
  Sqrt: { cases: [{ inputs: [{ shape: [3, 4], domain: 'positive' }], build: (g, [x]) => sqrt(g, x) }] },
  Reciprocal: {
    cases: [{ inputs: [{ shape: [3, 4], domain: 'positive' }], build: (g, [x]) => reciprocal(g, x) }],
  },
  Exp: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => exp(g, x) }] },
  Log: { cases: [{ inputs: [{ shape: [3, 4], domain: 'positive' }], build: (g, [x]) => log(g, x) }] },
  Sigmoid: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => sigmoid(g, x) }] },
  Cos: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => cos(g, x) }] },
  Sin: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => sin(g, x) }] },
  Tanh: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => tanh(g, x) }] },
  Relu: { cases: [{ inputs: [{ shape: [3, 4] }], build: (g, [x]) => relu(g, x) }] },
  Softplus: {
    cases: [
      { inputs: [{ shape: [3, 4] }], build: (g, [x]) => softplus(g, mul(g, x, g.constant(20, 'float64'))) },
    ],
  },
  // onnxruntime's CPU provider has no float64 Erf kernel
  Erf: {
    cases: [{ dtype: 'float32', inputs: [{ shape: [3, 4] }], build: (g, [x]) => erf(g, x) }],
    tol: F32_TOL,
  },
  Gelu: {
    cases: [{ dtype: 'float32', inputs: [{ shape: [3, 4] }], build: (g, [x]) => gelu(g, x) }],
    tol: F32_TOL,
  },
  // float32 in, float64 out, cast back by the rule. Cast is linear, so a large ε has no truncation
  // error and keeps float32 rounding of x ± εt (~1e-7 / 2ε) near 1e-6.
  Cast: {
    cases: [
      {
        dtype: 'float32',
        eps: 0.25,
        inputs: [{ shape: [3, 4] }],
        build: (g, [x]) => cast(g, x, { to: 'float64' }),
      },
    ],
    tol: 1e-4,
  },
  Identity: { cases: [{ inputs: [{ shape: [3] }], build: (g, [x]) => identity(g, x) }] },
  MatMul: {
    cases: [
      { inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], build: (g, [a, b]) => matMul(g, a, b) },
      { inputs: [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], build: (g, [a, b]) => matMul(g, a, b) },
      { inputs: [{ shape: [3, 4] }, { shape: [2, 4, 5] }], build: (g, [a, b]) => matMul(g, a, b) },
      { inputs: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }], build: (g, [a, b]) => matMul(g, a, b) },
    ],
  },
  FusedMatMul: {
    cases: [
      {
        inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }],
        build: (g, [a, b]) => fusedMatMul(g, a, b, { transB: true }),
      },
      {
        inputs: [{ shape: [2, 4, 3] }, { shape: [2, 4, 5] }],
        build: (g, [a, b]) => fusedMatMul(g, a, b, { transA: true, alpha: 0.7 }),
      },
      {
        inputs: [{ shape: [2, 4, 3] }, { shape: [1, 5, 4] }],
        build: (g, [a, b]) => fusedMatMul(g, a, b, { transA: true, transB: true, alpha: -1.3 }),
      },
      {
        inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }],
        build: (g, [a, b]) => fusedMatMul(g, a, b, { alpha: 2 }),
      },
      {
        inputs: [{ shape: [2, 2, 3, 4] }, { shape: [5, 4] }],
        build: (g, [a, b]) => fusedMatMul(g, a, b, { transB: true, alpha: 0.5 }),
      },
    ],
  },
  Gemm: {
    cases: [
      {
        inputs: [{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [5] }],
        build: (g, [a, b, c]) => gemm(g, a, b, c, { transB: true, alpha: 0.5, beta: 2 }),
      },
      {
        inputs: [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [3, 1] }],
        build: (g, [a, b, c]) => gemm(g, a, b, c, { transA: true }),
      },
      {
        inputs: [{ shape: [4, 3] }, { shape: [5, 4] }],
        build: (g, [a, b]) => gemm(g, a, b, undefined, { transA: true, transB: true }),
      },
    ],
  },
  Reshape: {
    cases: [
      { inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => reshape(g, x, { shape: [6, -1] }) },
      { inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => reshape(g, x, { shape: [0, -1, 2] }) },
    ],
  },
  ReshapeDynamic: {
    cases: [
      {
        inputs: [{ shape: [2, 3, 4] }],
        build: (g, [x]) => reshapeDynamic(g, x, g.constant([4n, 6n], 'int64'), { shape: [4, 6] }),
      },
    ],
  },
  RotateHalf: {
    cases: [
      { inputs: [{ shape: [2, 3, 8] }], build: (g, [x]) => rotateHalf(g, x) },
      { inputs: [{ shape: [3, 4] }], build: (g, [x]) => rotateHalf(g, x, { inverse: true }) },
    ],
  },
  Transpose: {
    cases: [{ inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => transpose(g, x, { perm: [2, 0, 1] }) }],
  },
  Unsqueeze: {
    cases: [{ inputs: [{ shape: [2, 3] }], build: (g, [x]) => unsqueeze(g, x, { axes: [0, -1] }) }],
  },
  Squeeze: {
    cases: [{ inputs: [{ shape: [2, 1, 3, 1] }], build: (g, [x]) => squeeze(g, x, { axes: [1, -1] }) }],
  },
  Concat: {
    cases: [
      {
        inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }],
        build: (g, [a, b, c]) => concat(g, a, b, c, { axis: 1 }),
      },
      { inputs: [{ shape: [2, 3] }], build: (g, [a]) => concat(g, a, a, { axis: 0 }) },
    ],
  },
  Split: {
    cases: [
      // one part unused: its cotangent is filled with zeros
      { inputs: [{ shape: [4, 5] }], build: (g, [x]) => split(g, x, { axis: 1, sizes: [2, 3] })[1] },
      {
        inputs: [{ shape: [5, 3] }],
        build: (g, [x]) => {
          const [p, , r] = split(g, x, { axis: 0, sizes: [2, 1, 2] })
          return mul(g, p, r)
        },
      },
    ],
  },
  Slice: {
    cases: [
      {
        inputs: [{ shape: [4, 6] }],
        build: (g, [x]) => slice(g, x, { starts: [1, -4], ends: [3, 100], axes: [0, 1] }),
      },
      {
        inputs: [{ shape: [2, 3, 8] }],
        build: (g, [x]) => slice(g, x, { starts: [4], ends: [8], axes: [-1] }),
      },
    ],
  },
  Pad: { cases: [{ inputs: [{ shape: [2, 3] }], build: (g, [x]) => pad(g, x, { pads: [1, 0, 0, 2] }) }] },
  Expand: { cases: [{ inputs: [{ shape: [3, 1] }], build: (g, [x]) => expand(g, x, { shape: [2, 3, 4] }) }] },
  ExpandDynamic: {
    cases: [
      {
        inputs: [{ shape: [3, 1] }],
        build: (g, [x]) => expandDynamic(g, x, g.constant([2n, 3n, 4n], 'int64'), { shape: [2, 3, 4] }),
      },
    ],
  },
  Gather: {
    cases: [
      // repeated ids: the embedding gradient must add up
      { inputs: [{ shape: [5, 3] }, ints([2, 2], [1, 4, 1, 0])], build: (g, [d, i]) => gather(g, d, i) },
      {
        inputs: [{ shape: [2, 5, 3] }, ints([4], [3, 0, 3, 2])],
        build: (g, [d, i]) => gather(g, d, i, { axis: 1 }),
      },
    ],
  },
  GatherElements: {
    cases: [
      {
        inputs: [{ shape: [3, 4] }, ints([3, 2], [0, 0, 3, 1, 2, 2])],
        build: (g, [d, i]) => gatherElements(g, d, i, { axis: 1 }),
      },
    ],
  },
  GatherND: {
    cases: [
      { inputs: [{ shape: [3, 4] }, ints([3, 1], [2, 0, 2])], build: (g, [d, i]) => gatherND(g, d, i) },
    ],
  },
  ScatterND: {
    cases: [
      {
        inputs: [{ shape: [4, 3] }, ints([2, 1], [1, 1]), { shape: [2, 3] }],
        build: (g, [d, i, u]) => scatterNDAdd(g, d, i, u),
      },
    ],
  },
  ScatterElements: {
    cases: [
      {
        inputs: [{ shape: [3, 4] }, ints([3, 2], [0, 3, 1, 1, 2, 0]), { shape: [3, 2] }],
        build: (g, [d, i, u]) => scatterElementsAdd(g, d, i, u, { axis: 1 }),
      },
    ],
  },
  ReduceSum: {
    cases: [
      { inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => reduceSum(g, x, { axes: [1] }) },
      { inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => reduceSum(g, x) },
      {
        inputs: [{ shape: [2, 3, 4] }],
        build: (g, [x]) => reduceSum(g, x, { axes: [0, -1], keepdims: true }),
      },
    ],
  },
  ReduceMean: {
    cases: [
      { inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => reduceMean(g, x, { axes: [2] }) },
      {
        inputs: [{ shape: [2, 3, 4] }],
        build: (g, [x]) => reduceMean(g, x, { axes: [0, 1], keepdims: true }),
      },
    ],
  },
  ReduceMax: {
    cases: [
      { inputs: [{ shape: [3, 4] }], build: (g, [x]) => reduceMax(g, x, { axes: [1] }) },
      {
        inputs: [{ shape: [2, 3, 4] }],
        build: (g, [x]) => reduceMax(g, x, { axes: [0, 2], keepdims: true }),
      },
    ],
  },
  Softmax: {
    cases: [
      { inputs: [{ shape: [3, 5] }], build: (g, [x]) => softmax(g, x) },
      { inputs: [{ shape: [3, 5] }], build: (g, [x]) => softmax(g, x, { axis: 0 }) },
    ],
  },
  LogSoftmax: {
    cases: [
      { inputs: [{ shape: [3, 5] }], build: (g, [x]) => logSoftmax(g, x) },
      { inputs: [{ shape: [2, 3, 5] }], build: (g, [x]) => logSoftmax(g, x, { axis: 1 }) },
    ],
  },
}

describe('VJP rules match central finite differences', () => {
  const results = new Map<string, VjpResult[]>()

  before(async () => {
    const names = Object.keys(GRAD_SPECS) as DifferentiableOp[]
    const cases = names.flatMap((op) => GRAD_SPECS[op].cases.map((c, i) => ({ ...c, name: `${op}#${i}` })))
    for (const r of await checkVjps(cases)) {
      const op = r.name.split('#')[0]
      results.set(op, [...(results.get(op) ?? []), r])
    }
  })

  it('covers every differentiable op of the registry', () => {
    const differentiable = Object.entries(OPS)
      .filter(([, op]) => op.differentiable)
      .map(([name]) => name)
      .sort()
    assert.deepEqual(Object.keys(GRAD_SPECS).sort(), differentiable)
    for (const [name, op] of Object.entries(OPS))
      assert.equal(op.def.type, name, `registry key of ${op.def.type}`)
  })

  for (const [op, spec] of Object.entries(GRAD_SPECS) as [DifferentiableOp, GradSpec][]) {
    it(op, () => {
      const tol = spec.tol ?? F64_TOL
      for (const r of results.get(op) ?? []) {
        assert.ok(Number.isFinite(r.lhs) && r.lhs !== 0, `${r.name}: degenerate check (lhs ${r.lhs})`)
        assert.ok(
          r.relErr < tol,
          `${r.name}: relative error ${r.relErr} ≥ ${tol} (lhs ${r.lhs}, rhs ${r.rhs})`,
        )
      }
      assert.equal(results.get(op)?.length, spec.cases.length)
    })
  }
})
