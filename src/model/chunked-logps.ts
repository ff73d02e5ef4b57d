/**
 * LM head + log-softmax + target pick in vocabulary chunks, for large vocabularies: the forward
 * keeps one (B, T, V/C) block of logits alive at a time (a running log-sum-exp merges the blocks),
 * and the backward recomputes each block's logits from the hidden states instead of keeping them,
 * so (B, T, V) logits never exist at once. Chunking the vocabulary rather than the tokens keeps the
 * batch and sequence axes dynamic.
 *
 * Math, per chunk c with logits z_c = h W_cᵀ and lse = log Σ_v exp z_v:
 *   logp = z[target] − lse;   dz_c = dy · (onehot_c(target) − exp(z_c − lse))
 *   dh = Σ_c dz_c W_c;        dW_c = dz_cᵀ h
 *
 * The weight may come as the uint16 bits of a half type with its upcast table (a frozen weight
 * fed as stored): each chunk is then upcast on its own, so the float table never exists whole.
 */
import {
  type AttrValue,
  add,
  and,
  concat,
  defineOp,
  exp,
  fusedMatMul,
  type Graph,
  greaterOrEqual,
  less,
  matMul,
  matMulTransA,
  mul,
  neg,
  reshape,
  scatterElementsAdd,
  slice,
  sub,
  type Tensor,
  unsqueeze,
  where,
} from '../engine/index.ts'
import { ShapeError } from '../errors.ts'
import { upcastBits } from './weight-source.ts'

const int = (value: number): AttrValue => ({ type: 'int', value })
const i64 = (g: Graph, values: number[]) =>
  g.constant(
    BigInt64Array.from(values, (v) => BigInt(v)),
    'int64',
    [values.length],
  )
const i64Scalar = (g: Graph, v: number) => g.constant(BigInt64Array.of(BigInt(v)), 'int64', [])

/** Vocabulary columns per chunk of the default head: one (rows × 16384) float32 block at a time. */
const DEFAULT_CHUNK = 16384

/**
 * Chunks of the LM head when none are asked for: one up to twice DEFAULT_CHUNK, where the full
 * logits are cheap and recomputing the head's matmul in the backward would only cost time; above
 * it (Llama 3's 128k, Qwen's 152k) about DEFAULT_CHUNK columns each.
 */
export function defaultVocabChunks(vocab: number): number {
  return vocab <= 2 * DEFAULT_CHUNK ? 1 : Math.ceil(vocab / DEFAULT_CHUNK)
}

/** [lo, hi) row ranges of the weight for `chunks` nearly equal chunks. */
export function chunkRanges(vocab: number, chunks: number): [number, number][] {
  const size = Math.ceil(vocab / chunks)
  const out: [number, number][] = []
  for (let lo = 0; lo < vocab; lo += size) out.push([lo, Math.min(vocab, lo + size)])
  return out
}

/** Where each target falls in chunk [lo, hi): its local index (0 outside) and a membership mask, (B, T). */
function targetsInChunk(g: Graph, targets: Tensor, lo: number, hi: number) {
  const local = sub(g, targets, i64Scalar(g, lo))
  const inside = and(g, greaterOrEqual(g, local, i64Scalar(g, 0)), less(g, local, i64Scalar(g, hi - lo)))
  return { index: where(g, inside, local, i64Scalar(g, 0)), inside }
}

export const chunkedTargetLogps = defineOp<
  [hidden: Tensor, weight: Tensor, targets: Tensor, halfTable?: Tensor],
  { chunks: number }
>({
  type: 'ChunkedTargetLogps',
  forward: (g, [h, w, targets, table], { chunks }) => {
    const [vocab, hiddenSize] = w.shape
    if (
      typeof vocab !== 'number' ||
      h.shape.at(-1) !== hiddenSize ||
      targets.dtype !== 'int64' ||
      (w.dtype === h.dtype) === (table !== undefined)
    ) {
      throw new ShapeError(
        `${g.nodeLabel('ChunkedTargetLogps')}: hidden (…, ${h.shape.at(-1)}), weight ${w.dtype} (${w.shape}) with an upcast table when not ${h.dtype}, int64 targets expected`,
      )
    }
    const lead = h.shape.slice(0, -1) // (B, T)
    const dtype = h.dtype
    const emit = (
      type: string,
      inputs: Tensor[],
      attrs: Record<string, AttrValue>,
      shape: readonly (number | string)[],
      out = dtype,
      domain?: string,
    ) => g.emit(type, inputs, attrs, [{ dtype: out, shape }], domain ? { domain } : {})[0]
    const last = i64(g, [-1])
    const zero = g.constant(0, dtype)
    const lses: Tensor[] = []
    let picked: Tensor | undefined
    for (const [lo, hi] of chunkRanges(vocab, chunks)) {
      const rows = [hi - lo, hiddenSize]
      let wc = emit('Slice', [w, i64(g, [lo]), i64(g, [hi]), i64(g, [0])], {}, rows, w.dtype)
      if (table) wc = emit('Gather', [table, emit('Cast', [wc], { to: int(6) }, rows, 'int32')], {}, rows)
      // The op's own emission (a Gemm on the CPU, MatMul on WebGPU), not recorded: this op is.
      const [z] = fusedMatMul.def.forward(g, [h, wc], { transB: true }) // (B, T, Vc)
      const m = emit('ReduceMax', [z, last], { keepdims: int(1) }, [...lead, 1])
      const s = emit(
        'ReduceSum',
        [emit('Exp', [emit('Sub', [z, m], {}, [...lead, hi - lo])], {}, [...lead, hi - lo]), last],
        { keepdims: int(1) },
        [...lead, 1],
      )
      lses.push(emit('Add', [emit('Log', [s], {}, [...lead, 1]), m], {}, [...lead, 1]))
      // The target's logit when it falls in this chunk, else 0.
      const local = emit('Sub', [targets, i64Scalar(g, lo)], {}, lead, 'int64')
      const inside = emit(
        'And',
        [
          emit('GreaterOrEqual', [local, i64Scalar(g, 0)], {}, lead, 'bool'),
          emit('Less', [local, i64Scalar(g, hi - lo)], {}, lead, 'bool'),
        ],
        {},
        lead,
        'bool',
      )
      const index = emit(
        'Unsqueeze',
        [emit('Where', [inside, local, i64Scalar(g, 0)], {}, lead, 'int64'), last],
        {},
        [...lead, 1],
        'int64',
      )
      const zt = emit('GatherElements', [z, index], { axis: int(-1) }, [...lead, 1])
      const own = emit('Where', [emit('Unsqueeze', [inside, last], {}, [...lead, 1], 'bool'), zt, zero], {}, [
        ...lead,
        1,
      ])
      picked = picked ? emit('Add', [picked, own], {}, [...lead, 1]) : own
    }
    // log Σ_c exp(lse_c), stabilised by the largest chunk lse.
    const all = emit('Concat', lses, { axis: int(-1) }, [...lead, lses.length])
    const top = emit('ReduceMax', [all, last], { keepdims: int(1) }, [...lead, 1])
    const sum = emit(
      'ReduceSum',
      [emit('Exp', [emit('Sub', [all, top], {}, [...lead, lses.length])], {}, [...lead, lses.length]), last],
      { keepdims: int(1) },
      [...lead, 1],
    )
    const lse = emit('Add', [emit('Log', [sum], {}, [...lead, 1]), top], {}, [...lead, 1])
    const logp = emit('Squeeze', [emit('Sub', [picked!, lse], {}, [...lead, 1]), last], {}, lead)
    return [logp, emit('Squeeze', [lse, last], {}, lead)]
  },
  // The second output (the log-sum-exp) is auxiliary: only logp's cotangent is propagated.
  vjp: (g, { inputs: [h, w, targets, table], outputs: [, lse], needs }, [dy], { chunks }) => {
    const vocab = w.shape[0] as number
    const dyE = unsqueeze(g, dy, { axes: [-1] }) // (B, T, 1)
    const lseE = unsqueeze(g, lse, { axes: [-1] }) // (B, T, 1)
    let dh: Tensor | undefined
    // dW only where the weight is trained (never for half bits).
    const dws: Tensor[] = []
    for (const [lo, hi] of chunkRanges(vocab, chunks)) {
      const part = slice(g, w, { starts: [lo], ends: [hi], axes: [0] }) // (Vc, H)
      const wc = table ? upcastBits(g, { bits: part, table }) : part
      const z = fusedMatMul(g, h, wc, { transB: true }) // (B, T, Vc), recomputed
      const spread = mul(g, exp(g, sub(g, z, lseE)), neg(g, dyE)) // −dy · softmax
      const { index, inside } = targetsInChunk(g, targets, lo, hi)
      const hit = where(g, inside, dy, g.constant(0, dy.dtype)) // (B, T)
      const dz = scatterElementsAdd(
        g,
        spread,
        unsqueeze(g, index, { axes: [-1] }),
        unsqueeze(g, hit, { axes: [-1] }),
        { axis: -1 },
      )
      const dhc = matMul(g, dz, wc) // (B, T, H)
      dh = dh ? add(g, dh, dhc) : dhc
      if (!needs[1]) continue
      const flatDz = reshape(g, dz, { shape: [-1, hi - lo] }) // (N, Vc)
      const flatH = reshape(g, h, { shape: [-1, h.shape.at(-1) as number] }) // (N, H)
      dws.push(matMulTransA(g, flatDz, flatH)) // (Vc, H)
    }
    const dw = dws.length === 0 ? null : dws.length === 1 ? dws[0] : concat(g, ...dws, { axis: 0 })
    return [dh!, dw, null, null]
  },
})
