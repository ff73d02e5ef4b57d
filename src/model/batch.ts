/**
 * Host side of a batch: token rows packed into a padded (B, T) layout (left or right padding), and
 * the feeds every decoder graph takes: token ids, RoPE cos/sin of each token's position, the
 * additive attention mask, and for scoring the counted next-token targets (their slots, ids and the
 * sequence each belongs to; the LM head runs at those only).
 *
 * Rows that share a prompt can share one packed row (a prompt tree): the prompt once, then each
 * response as a branch whose positions restart after the prompt and whose tokens see the prompt and
 * their own branch only. Every response's log-prob is the one it has in a row of its own, for the
 * prompt's tokens once (SSO's seven sequences per example hold three prompts).
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
  targetPositions: 'target_positions',
  targetSequences: 'target_sequences',
} as const

/** Added to the scores of masked keys: exp() of it is exactly 0, and a fully masked row stays finite. */
export const MASK_VALUE = -1e9

export type Padding = 'left' | 'right'

/** One sequence: prompt tokens then response tokens (only the response is scored). */
export interface TokenRow {
  prompt: readonly number[]
  response: readonly number[]
}

/** The counted next-token targets of a batch, (N) each: a sequence's in token order. */
export interface BatchTargets {
  /** Flat slot (b·T + t) whose hidden state predicts the target. */
  slots: Int32Array
  ids: Int32Array
  /** Index of the sequence (the input row) the target belongs to. */
  sequences: Int32Array
}

export interface PackedBatch {
  rows: number
  seq: number
  /** Input sequences the batch holds (rows, when no prompt is shared). */
  sequences: number
  /** (B, T) token ids, pad where mask is 0. */
  ids: Int32Array
  /** (B, T) 1 for real tokens. */
  mask: Uint8Array
  /** (B, T) position of each token in its sequence (HF: cumsum(mask) - 1, 0 on padding). */
  positions: Int32Array
  /** (B, T) 0 for prompt tokens, k for the k-th response of the row. */
  branches: Int32Array
  targets: BatchTargets
}

/** A packed row: one prompt and the responses (with their sequence index) that follow it. */
interface PromptTree {
  prompt: readonly number[]
  branches: { sequence: number; response: readonly number[] }[]
}

/** Rows grouped by identical prompt tokens, at most `maxBranches` to a tree, in order of first appearance. */
function promptTrees(rows: readonly TokenRow[], maxBranches: number): PromptTree[] {
  const trees: PromptTree[] = []
  const open = new Map<string, PromptTree>()
  rows.forEach((r, sequence) => {
    const key = r.prompt.join(',')
    let tree = open.get(key)
    if (!tree || tree.branches.length >= maxBranches) {
      tree = { prompt: r.prompt, branches: [] }
      trees.push(tree)
      open.set(key, tree)
    }
    tree.branches.push({ sequence, response: r.response })
  })
  return trees
}

const treeLength = (t: PromptTree) => t.branches.reduce((n, b) => n + b.response.length, t.prompt.length)
const longestOf = (trees: readonly PromptTree[]) => Math.max(...trees.map(treeLength))

/**
 * Prompt trees of at most `maxBranches` responses when they take fewer token slots (rows × longest
 * row, the padded batch) than one row per sequence and fit `seq`; one row per sequence otherwise
 * (short prompts under long responses: a tree is as long as its responses together).
 */
function layout(rows: readonly TokenRow[], maxBranches: number, seq?: number): PromptTree[] {
  const own = promptTrees(rows, 1)
  if (maxBranches <= 1) return own
  const shared = promptTrees(rows, maxBranches)
  const slots = (trees: readonly PromptTree[]) => trees.length * (seq ?? longestOf(trees))
  return slots(shared) < slots(own) && longestOf(shared) <= (seq ?? Number.POSITIVE_INFINITY) ? shared : own
}

/**
 * Packs rows into (B, T). With `maxBranches` above 1, rows with identical prompt tokens become prompt
 * trees of at most that many responses (bounded, so that a memory estimate bounds a row's length)
 * where that makes the batch smaller.
 */
export function packRows(
  rows: readonly TokenRow[],
  opts: { padding: Padding; padId: number; seq?: number; maxBranches?: number },
): PackedBatch {
  if (rows.length === 0) throw new ValidationError('a batch needs at least one row')
  const trees = layout(rows, opts.maxBranches ?? 1, opts.seq)
  const longest = longestOf(trees)
  const seq = opts.seq ?? longest
  if (seq < longest)
    throw new ValidationError(`a row has ${longest} tokens, more than the batch length ${seq}`)
  const n = trees.length * seq
  const ids = new Int32Array(n).fill(opts.padId)
  const mask = new Uint8Array(n)
  const positions = new Int32Array(n)
  const branches = new Int32Array(n)
  const place = (slot: number, id: number, position: number, branch: number) => {
    ids[slot] = id
    mask[slot] = 1
    positions[slot] = position
    branches[slot] = branch
  }
  const targets: { slot: number; id: number; sequence: number }[] = []
  trees.forEach((tree, b) => {
    const rowStart = b * seq + (opts.padding === 'left' ? seq - treeLength(tree) : 0)
    for (const [t, id] of tree.prompt.entries()) place(rowStart + t, id, t, 0)
    let slot = rowStart + tree.prompt.length
    tree.branches.forEach(({ sequence, response }, k) => {
      // the prompt's last token predicts every branch's first token
      let predictor = tree.prompt.length > 0 ? rowStart + tree.prompt.length - 1 : -1
      for (const [t, id] of response.entries()) {
        place(slot, id, tree.prompt.length + t, k + 1)
        if (predictor >= 0) targets.push({ slot: predictor, id, sequence })
        predictor = slot++
      }
    })
  })
  return {
    rows: trees.length,
    seq,
    sequences: rows.length,
    ids,
    mask,
    positions,
    branches,
    targets: {
      slots: Int32Array.from(targets, (t) => t.slot),
      ids: Int32Array.from(targets, (t) => t.id),
      sequences: Int32Array.from(targets, (t) => t.sequence),
    },
  }
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

/**
 * Token slots of a batch: each slot's position in its sequence, whether it holds a real token and,
 * in prompt trees, its branch (0: prompt; absent: every slot on one branch).
 */
export interface Slots {
  positions: Int32Array
  mask: Uint8Array
  branches?: Int32Array
}

/** The mask input of each kind of attention layer: a graph takes one per kind its layers use. */
const MASK_INPUT: Record<AttentionKind, string> = {
  full_attention: INPUT.bias,
  sliding_attention: INPUT.slidingBias,
}

const attentionKinds = (cfg: LlamaConfig): AttentionKind[] => [...new Set(cfg.layer_types)]

/**
 * (B, 1, T, S) additive masks, one per kind of layer: query slot i of row b sees key slot j when j
 * holds a real token at a position not after the query's (and, in sliding layers, within the window)
 * on the prompt or on the query's own branch.
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
        const branch = queries.branches?.[b * tq + i] ?? 0
        const base = (b * tq + i) * tk
        for (let j = 0; j < tk; j++) {
          const k = keys.positions[b * tk + j]
          const kb = keys.branches?.[b * tk + j] ?? 0
          const visible =
            keys.mask[b * tk + j] === 1 && k <= q && q - k < window && (kb === 0 || kb === branch)
          data[base + j] = visible ? 0 : MASK_VALUE
        }
      }
    }
    feeds[MASK_INPUT[kind]] = { dtype, dims: [rows, 1, tq, tk], data }
  }
  return feeds
}

/**
 * Feeds of a scoring graph: the decoder's inputs and the counted targets, (N) slots and ids, and the
 * (S, N) 0/1 matrix of which sequence each target belongs to (its product with the targets' log-probs
 * sums them per sequence). A batch with no target feeds one at slot 0 that belongs to no sequence,
 * so no graph sees an empty axis.
 */
export function scoringFeeds(
  cfg: LlamaConfig,
  batch: PackedBatch,
  dtype: FloatDType,
): Record<string, HostTensor> {
  const { rows, seq, targets } = batch
  const n = Math.max(1, targets.slots.length)
  const membership = new (dtype === 'float32' ? Float32Array : Float64Array)(batch.sequences * n)
  targets.sequences.forEach((s, i) => {
    membership[s * n + i] = 1
  })
  const int64 = (values: Int32Array) => BigInt64Array.from(values.length > 0 ? values : [0], (v) => BigInt(v))
  const { cos, sin } = ropeFeeds(cfg, batch.positions, rows, dtype)
  return {
    [INPUT.inputIds]: { dtype: 'int64', dims: [rows, seq], data: int64(batch.ids) },
    [INPUT.cos]: cos,
    [INPUT.sin]: sin,
    ...attentionMaskFeeds(cfg, rows, batch, batch, dtype),
    [INPUT.targetIds]: { dtype: 'int64', dims: [n], data: int64(targets.ids) },
    [INPUT.targetPositions]: { dtype: 'int64', dims: [n], data: int64(targets.slots) },
    [INPUT.targetSequences]: { dtype, dims: [batch.sequences, n], data: membership },
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

/** A scoring graph's counted targets: ids and flat slots, (N); sequence membership, (S, N). */
export interface ScoringTargets {
  ids: Tensor
  positions: Tensor
  sequences: Tensor
}

/**
 * Declares the scoring targets; the number of counted targets is the dimension `targets`, the
 * number of sequences `sequences` unless given (a loss that slices sequences by role fixes it).
 */
export function declareTargets(g: Graph, dtype: FloatDType, sequences: Dim = 'sequences'): ScoringTargets {
  return {
    ids: g.input(INPUT.targetIds, 'int64', ['targets']),
    positions: g.input(INPUT.targetPositions, 'int64', ['targets']),
    sequences: g.input(INPUT.targetSequences, dtype, [sequences, 'targets']),
  }
}
