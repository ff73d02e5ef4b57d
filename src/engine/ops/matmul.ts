import type { Graph } from '../graph.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { type Dim, formatShape, isStatic, type Tensor } from '../tensor.ts'
import { mul } from './elementwise.ts'
import { reshape, transpose } from './shape.ts'
import {
  attr,
  broadcastShapes,
  int64s,
  requireFloat,
  requireSameDType,
  sameDim,
  scalarLike,
  shapeError,
} from './util.ts'

interface MatMulAttrs {
  transA?: boolean
  transB?: boolean
  alpha?: number
}

/** Output shape of alpha · op(A) · op(B) with batch broadcasting; op transposes the last two dims. */
function matmulShape(g: Graph, type: string, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Dim[] {
  requireSameDType(g, type, [a, b])
  requireFloat(g, type, a)
  const shapes = `${formatShape(a.shape)} x ${formatShape(b.shape)}`
  if (a.shape.length < 2 || b.shape.length < 2) shapeError(g, type, `needs rank ≥ 2 operands: ${shapes}`)
  const [m, k] = transA ? a.shape.slice(-2).reverse() : a.shape.slice(-2)
  const [k2, n] = transB ? b.shape.slice(-2).reverse() : b.shape.slice(-2)
  if (!sameDim(k, k2)) shapeError(g, type, shapes, { a: a.shape, b: b.shape, transA, transB })
  return [...broadcastShapes(g, type, [a.shape.slice(0, -2), b.shape.slice(0, -2)]), m, n]
}

/**
 * alpha · op(A) · op(B) through the cheapest node: MatMul, Gemm for 2-D, else FusedMatMul
 * (transposes folded into the kernel where the graph allows it; the CPU kernel covers float64 too).
 */
export function matMulT(
  g: Graph,
  a: Tensor,
  b: Tensor,
  { transA = false, transB = false, alpha = 1 }: MatMulAttrs,
): Tensor {
  if (!transA && !transB && alpha === 1) return matMul(g, a, b)
  if (a.shape.length === 2 && b.shape.length === 2) return gemm(g, a, b, undefined, { transA, transB, alpha })
  return fusedMatMul(g, a, b, { transA, transB, alpha })
}

/**
 * alpha · Aᵀ · B for 2-D A (K, M) and B (K, N): the weight-gradient product. Asked for transA, MLAS
 * re-transposes blocks of A for every column block of B, about 1.4x slower than a plain product on
 * these shapes; one explicit transpose first is cheaper. It goes through a (K, M, 1) view because
 * onnxruntime folds a bare Transpose feeding MatMul back into FusedMatMul(transA). Graphs built with
 * `fusedMatMul: false` (WebGPU, whose kernels read transposed operands in place) keep the Gemm.
 */
export function matMulTransA(g: Graph, a: Tensor, b: Tensor, alpha = 1): Tensor {
  if (!g.fusedMatMul || a.shape.length !== 2 || b.shape.length !== 2) {
    return matMulT(g, a, b, { transA: true, alpha })
  }
  const column = reshape(g, a, { shape: [0, 0, 1] }) // (K, M, 1)
  const aT = reshape(g, transpose(g, column, { perm: [1, 0, 2] }), { shape: [0, 0] }) // (M, K)
  return matMulT(g, aT, b, { alpha })
}

/** Flattens all but the last axis: (…, n) → (N, n). */
function flatten2d(g: Graph, x: Tensor): Tensor | undefined {
  const last = x.shape[x.shape.length - 1]
  return typeof last === 'number' ? reshape(g, x, { shape: [-1, last] }) : undefined
}

/**
 * VJP of Y = alpha · op(A) · op(B), with the transposes folded into the products:
 *   dA = alpha · dY · op(B)ᵀ (transposed back when transA), dB = alpha · op(A)ᵀ · dY (likewise).
 * A rank-2 B shared across a batch gets its gradient from one flattened (N, k)ᵀ(N, n) product
 * instead of a batched product followed by a reduction.
 */
function matmulVjp(
  g: Graph,
  a: Tensor,
  b: Tensor,
  dy: Tensor,
  transA: boolean,
  transB: boolean,
  alpha: number,
) {
  const dA = () =>
    transA
      ? matMulT(g, b, dy, { transA: transB, transB: true, alpha })
      : matMulT(g, dy, b, { transB: !transB, alpha })
  const dB = () => {
    if (b.shape.length === 2 && a.shape.length > 2 && !transA) {
      const a2 = flatten2d(g, a)
      const dy2 = flatten2d(g, dy)
      if (a2 && dy2) return transB ? matMulTransA(g, dy2, a2, alpha) : matMulTransA(g, a2, dy2, alpha)
    }
    if (transB) return matMulT(g, dy, a, { transA: true, transB: transA, alpha })
    return matMulT(g, a, dy, { transA: !transA, alpha })
  }
  return [dA, dB]
}

/** Y = A · B with batch broadcasting (rank ≥ 2);  dA = dY · Bᵀ, dB = Aᵀ · dY. */
export const matMul = defineOp<[a: Tensor, b: Tensor]>({
  type: 'MatMul',
  forward: (g, [a, b]) =>
    g.emit('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: matmulShape(g, 'MatMul', a, b, false, false) }]),
  vjp: (g, { inputs: [a, b] }, [dy]): Cotangents => matmulVjp(g, a, b, dy, false, false, 1),
})

/** Last two axes swapped, as a raw node of the calling op. */
function emitSwapLast(g: Graph, x: Tensor): Tensor {
  const r = x.shape.length
  const perm = [...Array(r - 2).keys(), r - 1, r - 2]
  return g.emit('Transpose', [x], { perm: attr.ints(perm) }, [
    { dtype: x.dtype, shape: perm.map((i) => x.shape[i]) },
  ])[0]
}

/**
 * (…, k) · op(B) for a rank-2 B as raw nodes: Reshape to (N, k), one Gemm, Reshape back. This is
 * every linear layer's forward pass, and onnxruntime's CPU Gemm runs it 5–25% faster than
 * FusedMatMul does (measured on the model benchmark's projections and LM head).
 */
function emitFlatGemm(
  g: Graph,
  a: Tensor,
  b: Tensor,
  { k, n, transB, alpha }: { k: number; n: number; transB: boolean; alpha: number },
  shape: Dim[],
): Tensor {
  const lead = shape.slice(0, -1)
  const rows: Dim = isStatic(lead) ? lead.reduce((x: number, y: number) => x * y, 1) : lead.join('*')
  const [a2] = g.emit('Reshape', [a, int64s(g, [-1, k])], {}, [{ dtype: a.dtype, shape: [rows, k] }])
  const attrs = { alpha: attr.float(alpha), transB: attr.int(transB ? 1 : 0) }
  const [y2] = g.emit('Gemm', [a2, b], attrs, [{ dtype: a.dtype, shape: [rows, n] }])
  let target = isStatic(shape) ? int64s(g, shape) : undefined
  if (!target) {
    const [leadDims] = g.emit('Shape', [a], { end: attr.int(-1) }, [{ dtype: 'int64', shape: [lead.length] }])
    target = g.emit('Concat', [leadDims, int64s(g, [n])], { axis: attr.int(0) }, [
      { dtype: 'int64', shape: [shape.length] },
    ])[0]
  }
  return g.emit('Reshape', [y2, target], {}, [{ dtype: a.dtype, shape }])[0]
}

/**
 * com.microsoft FusedMatMul: Y = alpha · op(A) · op(B);  VJP as MatMul with the transposes folded.
 * Graphs built with `fusedMatMul: false` (WebGPU) get Transpose + MatMul (+ Mul) instead.
 */
export const fusedMatMul = defineOp<[a: Tensor, b: Tensor], MatMulAttrs>({
  type: 'FusedMatMul',
  forward: (g, [a, b], { transA = false, transB = false, alpha = 1 }) => {
    const shape = matmulShape(g, 'FusedMatMul', a, b, transA, transB)
    if (!g.fusedMatMul) {
      const out = { dtype: a.dtype, shape }
      const [y] = g.emit('MatMul', [transA ? emitSwapLast(g, a) : a, transB ? emitSwapLast(g, b) : b], {}, [
        out,
      ])
      return alpha === 1 ? [y] : g.emit('Mul', [y, scalarLike(g, y, alpha)], {}, [out])
    }
    const k = a.shape[a.shape.length - 1]
    const n = shape[shape.length - 1]
    if (
      !transA &&
      a.shape.length > 2 &&
      b.shape.length === 2 &&
      typeof k === 'number' &&
      typeof n === 'number'
    ) {
      return [emitFlatGemm(g, a, b, { k, n, transB, alpha }, shape)]
    }
    const attrs = {
      alpha: attr.float(alpha),
      transA: attr.int(transA ? 1 : 0),
      transB: attr.int(transB ? 1 : 0),
    }
    return g.emit('FusedMatMul', [a, b], attrs, [{ dtype: a.dtype, shape }], { domain: 'com.microsoft' })
  },
  vjp: (g, { inputs: [a, b] }, [dy], { transA = false, transB = false, alpha = 1 }): Cotangents =>
    matmulVjp(g, a, b, dy, transA, transB, alpha),
})

interface GemmAttrs extends MatMulAttrs {
  beta?: number
}

/** Y = alpha · op(A) · op(B) + beta · C (2-D);  dA, dB as MatMul, dC = beta · dY (unbroadcast). */
export const gemm = defineOp<[a: Tensor, b: Tensor, c?: Tensor], GemmAttrs>({
  type: 'Gemm',
  forward: (g, [a, b, c], { transA = false, transB = false, alpha = 1, beta = 1 }) => {
    if (a.shape.length !== 2 || b.shape.length !== 2) {
      shapeError(g, 'Gemm', `needs 2-D operands: ${formatShape(a.shape)} x ${formatShape(b.shape)}`)
    }
    let shape = matmulShape(g, 'Gemm', a, b, transA, transB)
    if (c) {
      requireSameDType(g, 'Gemm', [a, c])
      shape = broadcastShapes(g, 'Gemm', [shape, c.shape])
    }
    const attrs = {
      alpha: attr.float(alpha),
      beta: attr.float(beta),
      transA: attr.int(transA ? 1 : 0),
      transB: attr.int(transB ? 1 : 0),
    }
    return g.emit('Gemm', [a, b, c], attrs, [{ dtype: a.dtype, shape }])
  },
  vjp: (g, { inputs: [a, b] }, [dy], { transA = false, transB = false, alpha = 1, beta = 1 }): Cotangents => [
    ...matmulVjp(g, a, b, dy, transA, transB, alpha),
    () => (beta === 1 ? dy : mul(g, dy, scalarLike(g, dy, beta))),
  ],
})
