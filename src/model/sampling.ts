/**
 * Next-token choice from logits: greedy (temperature 0) or sampling with temperature, top-k and
 * top-p (nucleus), drawn from a seeded PRNG so a seed reproduces the same text. The reported
 * log-prob is the model's own, log softmax(logits) at the chosen token, before any warping.
 */
import type { Random } from './random.ts'

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number
  /** Keep the smallest set of tokens whose probability reaches topP (1 = all). */
  topP: number
  /** Keep the k most likely tokens (0 = all). */
  topK: number
}

function logSumExp(logits: ArrayLike<number>, from: number, n: number): number {
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < n; i++) max = Math.max(max, logits[from + i])
  let sum = 0
  for (let i = 0; i < n; i++) sum += Math.exp(logits[from + i] - max)
  return max + Math.log(sum)
}

/** Chooses a token from row `row` of (B, V) logits. */
export function chooseToken(
  logits: Float32Array | Float64Array,
  row: number,
  vocab: number,
  opts: SamplingOptions,
  rng: Random,
): { token: number; logprob: number } {
  const from = row * vocab
  const lse = logSumExp(logits, from, vocab)
  let token = 0
  if (opts.temperature <= 0) {
    for (let v = 1; v < vocab; v++) if (logits[from + v] > logits[from + token]) token = v
    return { token, logprob: logits[from + token] - lse }
  }
  // Candidates by descending logit (ties by id, so the order is deterministic).
  let order = Array.from({ length: vocab }, (_, v) => v).sort(
    (a, b) => logits[from + b] - logits[from + a] || a - b,
  )
  if (opts.topK > 0 && opts.topK < vocab) order = order.slice(0, opts.topK)
  const scaled = order.map((v) => logits[from + v] / opts.temperature)
  const max = scaled[0]
  const probs = scaled.map((s) => Math.exp(s - max))
  const total = probs.reduce((a, b) => a + b, 0)
  let keep = probs.length
  if (opts.topP < 1) {
    let cumulative = 0
    for (let i = 0; i < probs.length; i++) {
      cumulative += probs[i] / total
      if (cumulative >= opts.topP) {
        keep = i + 1
        break
      }
    }
  }
  const kept = probs.slice(0, keep).reduce((a, b) => a + b, 0)
  let u = rng.next() * kept
  token = order[keep - 1]
  for (let i = 0; i < keep; i++) {
    u -= probs[i]
    if (u < 0) {
      token = order[i]
      break
    }
  }
  return { token, logprob: logits[from + token] - lse }
}
