/**
 * Host side of a batch: token rows packed into a padded (B, T) layout (left or right padding), and
 * the feeds every decoder graph takes: token ids, RoPE cos/sin of each token's position, the
 * additive attention mask, and for scoring the next-token targets with the response mask and the
 * flat positions of the counted targets (the LM head runs at those only).
 */
import type { Dim, Graph, HostTensor, Tensor } from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import { type AttentionKind, type LlamaConfig, ropeInverseFrequencies } from './config.ts'
import type { DecoderInputs } from './llama.ts'
import type { FloatDType } from './weight-source.ts'

/** Graph input names shared by every decoder graph. */
export const INPUT = {
  inputIds: 'input_ids',
  cos: 'rope.cos',
  sin: 'rope.sin',
  bias: 'attention_bias',
  slidingBias: 'attention_bias.sliding',
  targetIds: 'target_ids',
  targetMask: 'target_mask',
  targetPositions: 'target_positions',
} as const

/** Added to the scores of masked keys: exp() of it is exactly 0, and a fully masked row stays finite. */
export const MASK_VALUE = -1e9

export type Padding = 'left' | 'right'

/** One sequence: prompt tokens then response tokens (only the response is scored). */
export interface TokenRow {
  prompt: readonly number[]
  response: readonly number[]
}

export interface PackedBatch {
  rows: number
  seq: number
  /** (B, T) token ids, pad where mask is 0. */
  ids: Int32Array
  /** (B, T) 1 for real tokens. */
  mask: Uint8Array
  /** (B, T) 1 for response tokens. */
  response: Uint8Array
  /** (B, T) position of each token among its row's real tokens (HF: cumsum(mask) - 1, 0 on padding). */
  positions: Int32Array
}

export function packRows(
  rows: readonly TokenRow[],
  opts: { padding: Padding; padId: number; seq?: number },
): PackedBatch {
  if (rows.length === 0) throw new ValidationError('a batch needs at least one row')
  const longest = Math.max(...rows.map((r) => r.prompt.length + r.response.length))
  const seq = opts.seq ?? longest
  if (seq < longest)
    throw new ValidationError(`a row has ${longest} tokens, more than the batch length ${seq}`)
  const n = rows.length * seq
  const packed: PackedBatch = {
    rows: rows.length,
    seq,
    ids: new Int32Array(n).fill(opts.padId),
    mask: new Uint8Array(n),
    response: new Uint8Array(n),
    positions: new Int32Array(n),
  }
  rows.forEach((r, b) => {
    const tokens = [...r.prompt, ...r.response]
    const start = b * seq + (opts.padding === 'left' ? seq - tokens.length : 0)
    tokens.forEach((id, t) => {
      packed.ids[start + t] = id
      packed.mask[start + t] = 1
      packed.response[start + t] = t >= r.prompt.length ? 1 : 0
      packed.positions[start + t] = t
    })
  })
  return packed
}

/** (B, T, D) cos and sin of position · inv_freq, the D/2 angles repeated over both halves. */
export function ropeFeeds(
  cfg: LlamaConfig,
  positions: Int32Array,
  rows: number,
  dtype: FloatDType,
): { cos: HostTensor; sin: HostTensor } {
  const inv = ropeInverseFrequencies(cfg)
  const d = cfg.head_dim
  const half = d / 2
  const Arr = dtype === 'float32' ? Float32Array : Float64Array
  const cos = new Arr(positions.length * d)
  const sin = new Arr(positions.length * d)
  for (let i = 0; i < positions.length; i++) {
    for (let j = 0; j < half; j++) {
      const angle = positions[i] * inv[j]
      const c = Math.cos(angle)
      const s = Math.sin(angle)
      cos[i * d + j] = c
      cos[i * d + j + half] = c
      sin[i * d + j] = s
      sin[i * d + j + half] = s
    }
  }
  const dims = [rows, positions.length / rows, d]
  return { cos: { dtype, dims, data: cos }, sin: { dtype, dims, data: sin } }
}

/** Token slots of a batch: each slot's position in its row and whether it holds a real token. */
export interface Slots {
  positions: Int32Array
  mask: Uint8Array
}

/** The mask input of each kind of attention layer: a graph takes one per kind its layers use. */
const MASK_INPUT: Record<AttentionKind, string> = {
  full_attention: INPUT.bias,
  sliding_attention: INPUT.slidingBias,
}

const attentionKinds = (cfg: LlamaConfig): AttentionKind[] => [...new Set(cfg.layer_types)]

/**
 * (B, 1, T, S) additive masks, one per kind of layer: query slot i of row b sees key slot j when j
 * holds a real token at a position not after the query's (and, in sliding layers, within the window).
 */
export function attentionMaskFeeds(
  cfg: LlamaConfig,
  rows: number,
  queries: Slots,
  keys: Slots,
  dtype: FloatDType,
): Record<string, HostTensor> {
  const tq = queries.positions.length / rows
  const tk = keys.positions.length / rows
  const feeds: Record<string, HostTensor> = {}
  for (const kind of attentionKinds(cfg)) {
    const window = kind === 'sliding_attention' ? cfg.sliding_window! : Number.POSITIVE_INFINITY
    const data = new (dtype === 'float32' ? Float32Array : Float64Array)(rows * tq * tk)
    for (let b = 0; b < rows; b++) {
      for (let i = 0; i < tq; i++) {
        const q = queries.positions[b * tq + i]
        const base = (b * tq + i) * tk
        for (let j = 0; j < tk; j++) {
          const k = keys.positions[b * tk + j]
          data[base + j] = keys.mask[b * tk + j] === 1 && k <= q && q - k < window ? 0 : MASK_VALUE
        }
      }
    }
    feeds[MASK_INPUT[kind]] = { dtype, dims: [rows, 1, tq, tk], data }
  }
  return feeds
}

/**
 * Feeds of a scoring graph: token t's target is token t + 1, counted when it is a response token.
 * The counted targets' flat positions (b·T + t) go in as well; a batch with none feeds position 0,
 * whose log-prob the mask then zeroes, so no graph sees an empty axis.
 */
export function scoringFeeds(
  cfg: LlamaConfig,
  batch: PackedBatch,
  dtype: FloatDType,
): Record<string, HostTensor> {
  const { rows, seq } = batch
  const targets = new BigInt64Array(rows * seq)
  const targetMask = new (dtype === 'float32' ? Float32Array : Float64Array)(rows * seq)
  const positions: bigint[] = []
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t + 1 < seq; t++) {
      const next = b * seq + t + 1
      targets[b * seq + t] = BigInt(batch.ids[next])
      targetMask[b * seq + t] = batch.response[next] & batch.mask[next]
      if (targetMask[b * seq + t] === 1) positions.push(BigInt(b * seq + t))
    }
  }
  if (positions.length === 0) positions.push(0n)
  const { cos, sin } = ropeFeeds(cfg, batch.positions, rows, dtype)
  return {
    [INPUT.inputIds]: {
      dtype: 'int64',
      dims: [rows, seq],
      data: BigInt64Array.from(batch.ids, (v) => BigInt(v)),
    },
    [INPUT.cos]: cos,
    [INPUT.sin]: sin,
    ...attentionMaskFeeds(cfg, rows, batch, batch, dtype),
    [INPUT.targetIds]: { dtype: 'int64', dims: [rows, seq], data: targets },
    [INPUT.targetMask]: { dtype, dims: [rows, seq], data: targetMask },
    [INPUT.targetPositions]: {
      dtype: 'int64',
      dims: [positions.length],
      data: BigInt64Array.from(positions),
    },
  }
}

/** Declares the decoder's inputs; `keys` names the key-axis length (the sequence, or past + sequence). */
export function declareDecoderInputs(
  g: Graph,
  cfg: LlamaConfig,
  dtype: FloatDType,
  dims: { rows: Dim; seq: Dim; keys: Dim },
): DecoderInputs {
  return {
    inputIds: g.input(INPUT.inputIds, 'int64', [dims.rows, dims.seq]),
    cos: g.input(INPUT.cos, dtype, [dims.rows, dims.seq, cfg.head_dim]),
    sin: g.input(INPUT.sin, dtype, [dims.rows, dims.seq, cfg.head_dim]),
    masks: Object.fromEntries(
      attentionKinds(cfg).map((kind) => [
        kind,
        g.input(MASK_INPUT[kind], dtype, [dims.rows, 1, dims.seq, dims.keys]),
      ]),
    ),
  }
}

/** A scoring graph's targets: next-token ids and the response mask, (B, T); counted positions, (N). */
export interface ScoringTargets {
  ids: Tensor
  mask: Tensor
  positions: Tensor
}

/** Declares the scoring targets; the number of counted positions is the dimension `targets`. */
export function declareTargets(g: Graph, dtype: FloatDType, dims: { rows: Dim; seq: Dim }): ScoringTargets {
  return {
    ids: g.input(INPUT.targetIds, 'int64', [dims.rows, dims.seq]),
    mask: g.input(INPUT.targetMask, dtype, [dims.rows, dims.seq]),
    positions: g.input(INPUT.targetPositions, 'int64', ['targets']),
  }
}
