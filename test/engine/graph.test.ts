import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  add,
  attention,
  concat,
  fusedMatMul,
  Graph,
  grad,
  matMul,
  mul,
  reduceSum,
  reshape,
  softmax,
  type Tensor,
} from '../../src/engine/index.ts'
import { GraphError, ShapeError } from '../../src/errors.ts'
import { assertAllClose } from '../helpers/all-close.ts'
import { rng } from '../helpers/finite-diff.ts'
import { runGraph } from '../helpers/run-graph.ts'

/** A small scoped model with a backward pass: what determinism is checked on. */
function buildModel(): Graph {
  const g = new Graph({ name: 'det' })
  const x = g.input('x', 'float32', ['batch', 6])
  const w = g.input('w', 'float32', [6, 4])
  const frozen = g.initializer(
    'frozen',
    'float32',
    [4, 4],
    Float32Array.from({ length: 16 }, (_, i) => i / 16),
  )
  const y = g.scope('model', () => softmax(g, matMul(g, matMul(g, x, w), frozen)))
  const loss = reduceSum(g, mul(g, y, g.constant(2, 'float32')))
  g.output(loss, 'loss')
  g.output(grad(g, loss, [w])[0]!, 'dw')
  return g
}

describe('Graph', () => {
  it('serializes deterministically: two builds give identical bytes', () => {
    const a = buildModel().serialize()
    const b = buildModel().serialize()
    assert.deepEqual(Buffer.from(a.model), Buffer.from(b.model))
    assert.deepEqual(
      a.externalData.map((e) => e.path),
      b.externalData.map((e) => e.path),
    )
  })

  it('gives identical outputs on two runs with the same inputs', async () => {
    const random = rng(3)
    const feeds = {
      x: { data: Float32Array.from({ length: 18 }, random), dims: [3, 6] },
      w: { data: Float32Array.from({ length: 24 }, random), dims: [6, 4] },
    }
    const first = await runGraph(buildModel(), feeds)
    const second = await runGraph(buildModel(), feeds)
    assert.deepEqual(Array.from(first.dw.data as Float32Array), Array.from(second.dw.data as Float32Array))
    assert.deepEqual(first.loss.data, second.loss.data)
  })

  it('names nodes by scope, and backward nodes under grad/', () => {
    const g = new Graph()
    const x = g.input('x', 'float32', [2, 3])
    const w = g.input('w', 'float32', [3, 3])
    const y = g.scope('model', () => g.scope('layers.0', () => g.scope('mlp', () => matMul(g, x, w))))
    const y2 = g.scope('model', () => g.scope('layers.0', () => g.scope('mlp', () => matMul(g, y, w))))
    assert.equal(y.name, 'model.layers.0.mlp/MatMul')
    assert.equal(y2.name, 'model.layers.0.mlp/MatMul_1')
    const [dw] = grad(g, reduceSum(g, y2), [w])
    assert.match(dw!.name, /^grad\/model\.layers\.0\.mlp\//)
  })

  it('deduplicates constants by dtype, shape and value', () => {
    const g = new Graph()
    assert.equal(g.constant(1, 'float32'), g.constant(1, 'float32'))
    assert.notEqual(g.constant(1, 'float32'), g.constant(1, 'float64'))
    assert.notEqual(g.constant([1, 2], 'float32'), g.constant([1, 2], 'float32', [2, 1]))
    assert.equal(g.constant([1n, 2n], 'int64'), g.constant(BigInt64Array.of(1n, 2n), 'int64', [2]))
  })

  it('stores large frozen weights as external data that onnxruntime loads from memory', async () => {
    const g = new Graph({ externalDataThreshold: 64 })
    const data = Float64Array.from({ length: 32 }, (_, i) => i + 0.25)
    const big = g.initializer('big', 'float64', [4, 8], data)
    const small = g.initializer('small', 'float64', [2], Float64Array.of(10, 20))
    const x = g.input('x', 'float64', [8])
    g.output(add(g, reduceSum(g, mul(g, big, x), { axes: [1] }), reduceSum(g, small)), 'y')
    const { model, externalData } = g.serialize()
    assert.equal(externalData.length, 1)
    assert.equal(externalData[0].data.byteLength, 32 * 8)
    const weightBytes = Buffer.from(data.buffer, 0, 16)
    assert.equal(Buffer.from(model).includes(weightBytes), false, 'the model must not embed the weights')
    assert.equal(
      Buffer.from(model).includes(Buffer.from(Float64Array.of(10, 20).buffer)),
      true,
      'small ones stay inline',
    )
    const out = await runGraph(g, { x: { data: new Float64Array(8).fill(1), dims: [8] } })
    assert.deepEqual(Array.from(out.y.data as Float64Array), [30 + 30, 94 + 30, 158 + 30, 222 + 30])
  })

  it('drops unused constants and nodes that no output needs', () => {
    const g = new Graph()
    const x = g.input('x', 'float32', [3])
    g.constant(42, 'float32')
    mul(g, x, x) // dead
    g.output(add(g, x, x), 'y')
    const bytes = Buffer.from(g.serialize().model)
    assert.equal(bytes.includes('Mul'), false)
    assert.equal(bytes.includes('const'), false)
  })
})

describe('Graph options', () => {
  it('fusedMatMul: false writes standard ops with the same values and gradients', async () => {
    const build = (fused: boolean) => {
      const g = new Graph({ fusedMatMul: fused })
      const a = g.input('a', 'float64', [2, 4, 3])
      const b = g.input('b', 'float64', [5, 4])
      const y = fusedMatMul(g, a, b, { transA: true, transB: true, alpha: 0.5 }) // (2, 3, 5)
      const loss = reduceSum(g, mul(g, y, y))
      g.output(loss, 'loss')
      for (const [i, t] of grad(g, loss, [a, b]).entries()) g.output(t!, `d${i}`)
      return g
    }
    const random = rng(5)
    const feeds = {
      a: { data: Float64Array.from({ length: 24 }, random), dims: [2, 4, 3] },
      b: { data: Float64Array.from({ length: 20 }, random), dims: [5, 4] },
    }
    const plain = build(false)
    assert.equal(Buffer.from(plain.serialize().model).includes('com.microsoft'), false)
    const [x, y] = [await runGraph(build(true), feeds), await runGraph(plain, feeds)]
    for (const key of ['loss', 'd0', 'd1']) {
      assertAllClose(y[key].data as Float64Array, x[key].data as Float64Array, { rtol: 1e-12, what: key })
    }
  })
})

describe('Graph errors', () => {
  it('peakIntermediateBytes frees values after their last reader; countOutputs: false leaves outputs to the caller', () => {
    const g = new Graph({ name: 'peak' })
    const x = g.input('x', 'float32', ['batch', 8])
    const a = mul(g, x, g.constant(2, 'float32'))
    const b = add(g, a, g.constant(1, 'float32'))
    g.output(b, 'y') // an Identity renames b
    // batch 4: 128 bytes a value; a and b are alive together, then b and its renamed output
    assert.equal(g.peakIntermediateBytes({ batch: 4 }), 256)
    // b is the output's value (onnxruntime writes it where the Identity would have)
    assert.equal(g.peakIntermediateBytes({ batch: 4 }, { countOutputs: false }), 128)
    assert.throws(() => g.peakIntermediateBytes({}), /dimension 'batch' has no size/)
  })

  it("peakIntermediateBytes walks in onnxruntime's order on request: each output's chain, the last output first", () => {
    const g = new Graph({ name: 'order' })
    const x = g.input('x', 'float32', ['batch', 8])
    const u = mul(g, x, g.constant(2, 'float32'))
    const v = mul(g, x, g.constant(3, 'float32'))
    g.output(add(g, u, g.constant(1, 'float32')), 'y1')
    g.output(add(g, v, g.constant(1, 'float32')), 'y2')
    // recorded: u and v (128 bytes each) are alive together; onnxruntime runs v's chain, then u's
    const opts = { countOutputs: false } as const
    assert.equal(g.peakIntermediateBytes({ batch: 4 }, opts), 256)
    assert.equal(g.peakIntermediateBytes({ batch: 4 }, { ...opts, order: 'onnxruntime' }), 128)
  })

  it('says when it recomputes checkpointed segments, so that sessions keep the recomputation', () => {
    const plain = new Graph({ name: 'plain' })
    plain.output(mul(plain, plain.input('x', 'float32', [2]), plain.constant(2, 'float32')), 'y')
    assert.equal(plain.serialize().recomputes, false)
    const g = new Graph({ name: 'segmented' })
    const x = g.input('x', 'float32', [2])
    g.output(
      g.checkpoint([x], () => mul(g, x, g.constant(2, 'float32'))),
      'y',
    )
    assert.equal(g.serialize().recomputes, true)
  })

  it('rejects a tensor of another graph as an undefined input', () => {
    const other = new Graph({ name: 'other' })
    const stranger = other.input('stranger', 'float32', [2])
    const g = new Graph({ name: 'main' })
    const x = g.input('x', 'float32', [2])
    assert.throws(
      () => add(g, x, stranger),
      (e: unknown) => e instanceof GraphError && /'stranger' is not defined in graph 'main'/.test(e.message),
    )
    const fake: Tensor = { name: 'ghost', dtype: 'float32', shape: [2] }
    assert.throws(() => add(g, x, fake), /'ghost' is not defined/)
  })

  it('reports a MatMul shape mismatch with the scope and both shapes', () => {
    const g = new Graph()
    const a = g.input('a', 'float32', [2, 16, 64])
    const b = g.input('b', 'float32', [32, 64])
    assert.throws(
      () => g.scope('model.layers.3.self_attn', () => matMul(g, a, b)),
      (e: unknown) =>
        e instanceof ShapeError && e.message === 'model.layers.3.self_attn/MatMul: (2, 16, 64) x (32, 64)',
    )
  })

  it('reports broadcast, rank and dtype mismatches', () => {
    const g = new Graph()
    const a = g.input('a', 'float32', [2, 3])
    const b = g.input('b', 'float32', [4])
    const c = g.input('c', 'float64', [2, 3])
    assert.throws(
      () => add(g, a, b),
      (e: unknown) => e instanceof ShapeError && /cannot broadcast \(2, 3\) with \(4,\)/.test(e.message),
    )
    assert.throws(
      () => add(g, a, c),
      (e: unknown) => e instanceof GraphError && /dtype mismatch: 'a' float32, 'c' float64/.test(e.message),
    )
    assert.throws(() => concat(g, a, b, { axis: 0 }), ShapeError)
    assert.throws(() => reshape(g, a, { shape: [5, -1] }), /cannot reshape \(2, 3\) to \(5, -1\)/)
    const q = g.input('q', 'float32', [1, 3, 4, 8])
    const k = g.input('k', 'float32', [1, 2, 4, 8])
    assert.throws(() => attention(g, q, k, k), /H a multiple of Hkv/)
  })

  it('validate() reports unsupported ops, missing outputs and undefined node inputs', () => {
    const g = new Graph({ name: 'v' })
    const x = g.input('x', 'float32', [2])
    assert.throws(() => g.validate(), /graph 'v' has no outputs/)
    const [y] = g.emit('NotAnOp', [x], {}, [{ dtype: 'float32', shape: [2] }])
    g.output(y, 'y')
    assert.throws(
      () => g.validate(),
      (e: unknown) => e instanceof GraphError && /op 'NotAnOp' is not supported/.test(e.message),
    )
    assert.throws(() => g.serialize(), GraphError)

    const h = new Graph()
    const a = h.input('a', 'float32', [2])
    const b = h.input('b', 'float64', [2])
    h.output(h.emit('Add', [a, b], {}, [{ dtype: 'float32', shape: [2] }])[0], 'y')
    assert.throws(() => h.validate(), /Add inputs differ in dtype: 'a' float32, 'b' float64/)
    assert.throws(() => new Graph({ opset: 7 }), /opset 7 is not supported/)
  })
})
