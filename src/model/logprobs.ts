/**
 * Sequence log-probs over response tokens: log p(target | the tokens before it) summed per sequence,
 * with the token count and the mean. Sequences are independent, so chosen and rejected responses
 * (or any roles) share one batch.
 */
import {
  div,
  type Graph,
  gather,
  matMul,
  max,
  reduceSum,
  reshape,
  selectiveLogSoftmax,
  squeeze,
  type Tensor,
  unsqueeze,
} from '../engine/index.ts'
import type { ScoringTargets } from './batch.ts'
import { chunkedTargetLogps, defaultVocabChunks } from './chunked-logps.ts'
import type { ModelContext } from './layers.ts'
import { lmHead, lmHeadWeight } from './llama.ts'
import { toFloat32 } from './precision.ts'

/** Per-row response log-probs, each (B). */
export interface SequenceLogps {
  sum: Tensor
  mean: Tensor
  count: Tensor
}

/**
 * log p(target) at every position (B, T): log-softmax of the logits (B, T, V), gathered at the
 * targets. With vocabChunks > 1 the head runs in vocabulary chunks and (B, T, V) logits never
 * exist at once (chunked-logps.ts); by default large vocabularies are chunked.
 */
function tokenLogps(
  ctx: ModelContext,
  hidden: Tensor,
  targetIds: Tensor,
  vocabChunks = defaultVocabChunks(ctx.cfg.vocab_size),
): Tensor {
  const { g } = ctx
  if (vocabChunks > 1) {
    // Mixed precision: the chunked head runs in float32 (from the float16 weight and hidden states);
    // a half-stored weight (uint16 bits) is upcast chunk by chunk inside.
    const { weight, half } = lmHeadWeight(ctx)
    return g.withScopePath('lm_head', () => {
      const [h, w] = [toFloat32(g, hidden), toFloat32(g, weight)]
      return chunkedTargetLogps.applyAll(g, [h, w, targetIds, half?.table], { chunks: vocabChunks })[0]
    })
  }
  // Mixed precision: float16 logits, their log-softmax over the vocabulary in float32.
  const logits = toFloat32(g, lmHead(ctx, hidden)) // (B, T, V)
  // Graphs built for WebGPU (no FusedMatMul there) also avoid LogSoftmax, which it runs on the CPU:
  // (B, T, V) logits would cross the bus twice per step.
  return g.withScopePath('logps', () =>
    selectiveLogSoftmax(g, logits, targetIds, { decomposed: !g.fusedMatMul }),
  )
}

/**
 * tokenLogps at the counted targets only, (N): the LM head (most of a step's compute at 128k–152k
 * vocabularies) skips prompt and padding tokens.
 */
export function targetLogps(
  ctx: ModelContext,
  hidden: Tensor,
  targets: ScoringTargets,
  vocabChunks?: number,
): Tensor {
  const { g } = ctx
  return g.withScopePath('targets', () => {
    const flatHidden = reshape(g, hidden, { shape: [-1, ctx.cfg.hidden_size] }) // (B·T, H)
    const picked = unsqueeze(g, gather(g, flatHidden, targets.positions), { axes: [0] }) // (1, N, H)
    const ids = unsqueeze(g, targets.ids, { axes: [0] }) // (1, N)
    return squeeze(g, tokenLogps(ctx, picked, ids, vocabChunks), { axes: [0] }) // (N)
  })
}

/**
 * Per-sequence sums of the targets' log-probs (N) through the (S, N) membership matrix: sum, count
 * and mean (count clamped at 1 for empty responses).
 */
export function reduceSequences(g: Graph, logps: Tensor, membership: Tensor): SequenceLogps {
  return g.withScopePath('logps', () => {
    const column = unsqueeze(g, logps, { axes: [-1] }) // (N, 1)
    const sum = squeeze(g, matMul(g, membership, column), { axes: [-1] }) // (S)
    const count = reduceSum(g, membership, { axes: [1] })
    const mean = div(g, sum, max(g, count, g.constant(1, membership.dtype)))
    return { sum, mean, count }
  })
}
