import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  add,
  applyRotary,
  attention,
  cast,
  type Dim,
  type FloatDType,
  Graph,
  gather,
  grad,
  logSoftmax,
  logSoftmaxDecomposed,
  matMul,
  mul,
  reduceMean,
  reduceSum,
  reshape,
  rmsNorm,
  rotaryCosSin,
  selectiveLogSoftmax,
  silu,
  type Tensor,
  transpose,
} from '../../src/engine/index.ts'
import { assertAllClose } from '../helpers/all-close.ts'
import { checkVjps, rng, type VjpCase } from '../helpers/finite-diff.ts'
import { readOnnxNodes } from '../helpers/onnx-nodes.ts'
import { type Feed, runGraph } from '../helpers/run-graph.ts'

const [B, T, DM, H, HKV, D, FF] = [2, 5, 8, 4, 2, 4, 12]
const WEIGHTS = {
  norm1: [DM],
  q: [DM, H * D],
  k: [DM, HKV * D],
  v: [DM, HKV * D],
  o: [H * D, DM],
  norm2: [DM],
  gate: [DM, FF],
  up: [DM, FF],
  down: [FF, DM],
} as const

/** (B, T, heads·D) → (B, heads, T, D) */
function splitHeads(g: Graph, x: Tensor, heads: number): Tensor {
  const h = reshape(g, x, { shape: [0, 0, heads, D] }) // (B, T, heads, D)
  return transpose(g, h, { perm: [0, 2, 1, 3] }) // (B, heads, T, D)
}

/** One Llama decoder block: RMSNorm → rotary GQA causal attention → residual → RMSNorm → SwiGLU → residual. */
function decoderBlock(
  g: Graph,
  x: Tensor,
  w: Record<keyof typeof WEIGHTS, Tensor>,
  positions: Tensor,
): Tensor {
  const { cos, sin } = rotaryCosSin(g, positions, { headDim: D, theta: 10000, dtype: x.dtype as FloatDType })
  const attn = g.scope('self_attn', () => {
    const h = rmsNorm(g, x, w.norm1, 1e-6)
    const q = applyRotary(g, splitHeads(g, matMul(g, h, w.q), H), cos, sin)
    const k = applyRotary(g, splitHeads(g, matMul(g, h, w.k), HKV), cos, sin)
    const v = splitHeads(g, matMul(g, h, w.v), HKV)
    const o = transpose(g, attention(g, q, k, v), { perm: [0, 2, 1, 3] }) // (B, T, H, D)
    return matMul(g, reshape(g, o, { shape: [0, 0, H * D] }), w.o) // (B, T, DM)
  })
  const x1 = add(g, x, attn)
  const mlp = g.scope('mlp', () => {
    const h = rmsNorm(g, x1, w.norm2, 1e-6)
    return matMul(g, mul(g, silu(g, matMul(g, h, w.gate)), matMul(g, h, w.up)), w.down)
  })
  return add(g, x1, mlp)
}

function weightInputs(g: Graph, dtype: FloatDType): Record<keyof typeof WEIGHTS, Tensor> {
  return Object.fromEntries(
    Object.entries(WEIGHTS).map(([name, shape]) => [name, g.input(name, dtype, [...shape])]),
  ) as Record<keyof typeof WEIGHTS, Tensor>
}

function randomFeed(random: () => number, shape: readonly number[], scale = 1): Feed {
  const n = shape.reduce((a, b) => a * b, 1)
  return { data: Float64Array.from({ length: n }, () => (random() * 2 - 1) * scale), dims: shape }
}

describe('composites', () => {
  it('a decoder block (RMSNorm, rotary, GQA causal attention, SwiGLU) passes the float64 VJP check', async () => {
    const names = Object.keys(WEIGHTS) as (keyof typeof WEIGHTS)[]
    const [r] = await checkVjps([
      {
        name: 'decoder-block',
        inputs: [
          { shape: [B, T, DM] },
          ...names.map((n) => ({ shape: [...WEIGHTS[n]] })),
          { shape: [T], ints: [0, 1, 2, 3, 4] },
        ],
        build: (g, [x, ...rest]) => {
          const w = Object.fromEntries(names.map((n, i) => [n, rest[i]])) as Record<
            keyof typeof WEIGHTS,
            Tensor
          >
          return decoderBlock(g, x, w, rest[names.length])
        },
      },
    ])
    assert.ok(r.relErr < 1e-6, `relative error ${r.relErr} (lhs ${r.lhs}, rhs ${r.rhs})`)
  })

  it('a SiLU MLP with a selective log-softmax loss passes the float64 VJP check', async () => {
    const results = await checkVjps(
      [false, true].map((decomposed) => ({
        name: `mlp decomposed=${decomposed}`,
        inputs: [
          { shape: [3, 4, 6] },
          { shape: [6, 10] },
          { shape: [10, 7] },
          { shape: [3, 4], ints: [1, 6, 0, 2, 2, 3, 4, 5, 6, 0, 1, 1] },
        ],
        build: (g: Graph, [x, w1, w2, ids]: Tensor[]) =>
          reduceMean(
            g,
            selectiveLogSoftmax(g, matMul(g, silu(g, matMul(g, x, w1)), w2), ids, { decomposed }),
          ),
      })),
    )
    for (const r of results) assert.ok(r.relErr < 1e-6, `${r.name}: relative error ${r.relErr}`)
  })

  it('the decomposed log-softmax equals LogSoftmax, with the same gradient', async () => {
    const g = new Graph()
    const x = g.input('x', 'float64', [3, 7])
    const a = logSoftmax(g, x)
    const b = logSoftmaxDecomposed(g, x)
    const seed = g.input('seed', 'float64', [3, 7])
    g.output(a, 'a')
    g.output(b, 'b')
    g.output(grad(g, a, [x], seed)[0]!, 'da')
    g.output(grad(g, b, [x], seed)[0]!, 'db')
    const random = rng(7)
    const out = await runGraph(g, { x: randomFeed(random, [3, 7], 30), seed: randomFeed(random, [3, 7]) })
    assertAllClose(out.b.data as Float64Array, out.a.data as Float64Array, {
      rtol: 1e-12,
      atol: 1e-12,
      what: 'logp',
    })
    assertAllClose(out.db.data as Float64Array, out.da.data as Float64Array, {
      rtol: 1e-10,
      atol: 1e-12,
      what: 'grad',
    })
  })

  it('named dynamic dims give the same loss and gradients as static ones', async () => {
    const build = (batch: Dim, seq: Dim) => {
      const g = new Graph()
      const x = g.input('x', 'float64', [batch, seq, DM])
      const w = weightInputs(g, 'float64')
      const positions = g.input('positions', 'int64', [seq])
      const loss = reduceMean(g, mul(g, decoderBlock(g, x, w, positions), decoderBlock(g, x, w, positions)))
      g.output(loss, 'loss')
      for (const [i, t] of grad(g, loss, [x, w.q, w.k, w.down]).entries()) g.output(t!, `d${i}`)
      return g
    }
    const random = rng(11)
    const feeds: Record<string, Feed> = {
      x: randomFeed(random, [B, T, DM]),
      positions: { data: BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), dims: [T] },
    }
    for (const [name, shape] of Object.entries(WEIGHTS)) feeds[name] = randomFeed(random, shape)
    const fixed = await runGraph(build(B, T), feeds)
    const named = await runGraph(build('batch', 'seq'), feeds)
    for (const key of ['loss', 'd0', 'd1', 'd2', 'd3']) {
      assertAllClose(named[key].data as Float64Array, fixed[key].data as Float64Array, {
        rtol: 1e-12,
        atol: 1e-14,
        what: key,
      })
    }
  })

  it('rmsNorm on float16 input normalizes in float32 and returns float16', async () => {
    const g = new Graph()
    // float16 feeds fail in onnxruntime-node 1.30 on Node 24 (its Float16Array is not accepted by the
    // binding), so the float16 values are made inside the graph
    const x = cast(g, g.input('x', 'float32', [2, 8]), { to: 'float16' })
    const w = cast(g, g.input('w', 'float32', [8]), { to: 'float16' })
    const y = rmsNorm(g, x, w, 1e-5)
    assert.equal(y.dtype, 'float16')
    g.output(cast(g, y, { to: 'float32' }), 'y')
    const xs = Array.from({ length: 16 }, (_, i) => (i - 7.5) * 300) // squares overflow float16
    const ws = Array.from({ length: 8 }, (_, i) => 0.5 + i / 8)
    const out = await runGraph(g, {
      x: { data: Float32Array.from(xs), dims: [2, 8] },
      w: { data: Float32Array.from(ws), dims: [8] },
    })
    const expected = xs.map((v, i) => {
      const row = xs.slice(Math.floor(i / 8) * 8, Math.floor(i / 8) * 8 + 8)
      const rms = Math.sqrt(row.reduce((s, r) => s + r * r, 0) / 8 + 1e-5)
      return (v / rms) * ws[i % 8]
    })
    // float16 keeps ~3 significant digits
    assertAllClose(out.y.data as Float32Array, expected, { rtol: 4e-3, atol: 2e-3, what: 'rmsNorm fp16' })
  })

  it('rmsNorm passes the float64 VJP check, checkpointed too', async () => {
    const norm = (g: Graph, [x, w]: Tensor[]) => rmsNorm(g, x, w, 1e-6)
    const results = await checkVjps([
      { name: 'rows', inputs: [{ shape: [2, 3, 8] }, { shape: [8] }], build: norm },
      { name: 'leading 1', inputs: [{ shape: [1, 5, 6] }, { shape: [6] }], build: norm },
      { name: 'per head', inputs: [{ shape: [2, 3, 2, 4] }, { shape: [4] }], build: norm },
      {
        name: 'checkpointed',
        inputs: [{ shape: [2, 4, 6] }, { shape: [6] }],
        build: (g, [x, w]) => g.checkpoint([x], () => mul(g, norm(g, [x, w]), x)),
      },
    ])
    for (const r of results) assert.ok(r.relErr < 1e-6, `${r.name}: relative error ${r.relErr}`)
  })

  it('silu passes the float64 VJP check, checkpointed too, and its float32 form is x · σ(x)', async () => {
    const results = await checkVjps([
      {
        name: 'wide range',
        inputs: [{ shape: [3, 7] }],
        build: (g, [x]) => silu(g, mul(g, x, g.constant(6, 'float64'))),
      },
      {
        name: 'checkpointed',
        inputs: [{ shape: [2, 5] }],
        build: (g, [x]) => g.checkpoint([x], () => mul(g, silu(g, x), x)),
      },
    ])
    for (const r of results) assert.ok(r.relErr < 1e-6, `${r.name}: relative error ${r.relErr}`)
    const g = new Graph()
    g.output(silu(g, g.input('x', 'float32', [9])), 'y')
    const xs = Float32Array.from([-30, -6, -1.5, -0.1, 0, 0.1, 1.5, 6, 30])
    const out = await runGraph(g, { x: { data: xs, dims: [9] } })
    const expected = Array.from(xs, (v) => v / (1 + Math.exp(-v)))
    assertAllClose(out.y.data as Float32Array, expected, { rtol: 1e-6, atol: 1e-7, what: 'silu float32' })
  })

  it('applyRotary passes the float64 VJP check in x, cos and sin, and through its backward, both swaps', async () => {
    const random = rng(5)
    const fixed = (g: Graph, shape: number[]) =>
      g.constant(
        Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1),
        'float64',
        shape,
      )
    const [X, CS] = [
      [2, 3, 4, 8],
      [2, 1, 4, 8],
    ]
    const all = [{ shape: X }, { shape: CS }, { shape: CS }]
    const cases: VjpCase[] = [
      { name: 'x, cos, sin', inputs: all, build: (g, [x, c, s]) => applyRotary(g, x, c, s) },
      { name: 'x', inputs: [{ shape: X }], build: (g, [x]) => applyRotary(g, x, fixed(g, CS), fixed(g, CS)) },
      {
        name: 'cos',
        inputs: [{ shape: CS }],
        build: (g, [c]) => applyRotary(g, fixed(g, X), c, fixed(g, CS)),
      },
      {
        name: 'sin',
        inputs: [{ shape: CS }],
        build: (g, [s]) => applyRotary(g, fixed(g, X), fixed(g, CS), s),
      },
      {
        // the x-cotangent, a function of the upstream cotangent u, cos and sin (the transposed form)
        name: 'backward',
        inputs: all,
        build: (g, [u, c, s]) => {
          const x = fixed(g, X)
          return grad(g, applyRotary(g, x, c, s), [x], u)[0]!
        },
      },
      {
        name: 'checkpointed',
        inputs: all,
        build: (g, [x, c, s]) => g.checkpoint([x], () => applyRotary(g, applyRotary(g, x, c, s), c, s)),
      },
    ]
    // WebGPU graphs (no FusedMatMul) swap halves with one Gather, CPU graphs with Split and Concat.
    const results = [...(await checkVjps(cases)), ...(await checkVjps(cases, 1234, { fusedMatMul: false }))]
    for (const r of results) assert.ok(r.relErr < 1e-6, `${r.name}: relative error ${r.relErr}`)
  })

  it('rotary emits one signed sin per table, recomputes included; rmsNorm leaves no zero fill', () => {
    const g = new Graph()
    const x = g.input('x', 'float32', [1, 2, 3, 8])
    const [c, s] = [g.input('cos', 'float32', [1, 1, 3, 8]), g.input('sin', 'float32', [1, 1, 3, 8])]
    const w = g.input('w', 'float32', [8])
    const y = g.checkpoint([x], () => applyRotary(g, rmsNorm(g, applyRotary(g, x, c, s), w, 1e-6), c, s))
    for (const [i, t] of grad(g, reduceSum(g, mul(g, y, y)), [x, w]).entries()) g.output(t!, `d${i}`)
    const nodes = readOnnxNodes(g.serialize().model)
    assert.equal(nodes.filter((n) => n.name.startsWith('rotary_sin/')).length, 1)
    assert.deepEqual(
      nodes.filter((n) => n.opType === 'Expand' && n.name.includes('rms_norm')).map((n) => n.name),
      [],
    )
  })
})

describe('float16', () => {
  it('trains an embedding lookup: the scatter-add gradient runs through float32', async () => {
    // float16 feeds fail in onnxruntime-node 1.30 on Node 24, so float16 values are made in the graph
    const g = new Graph()
    const table = g.input('table', 'float32', [4, 3])
    const table16 = cast(g, table, { to: 'float16' })
    const ids = g.constant([1n, 3n, 1n], 'int64', [3])
    const loss = reduceSum(g, mul(g, gather(g, table16, ids), g.constant(2, 'float16')))
    const [dTable] = grad(g, loss, [table16])
    g.output(cast(g, dTable!, { to: 'float32' }), 'dtable')
    const out = await runGraph(g, { table: { data: new Float32Array(12), dims: [4, 3] } })
    assert.deepEqual(Array.from(out.dtable.data as Float32Array), [0, 0, 0, 4, 4, 4, 0, 0, 0, 2, 2, 2])
  })
})
