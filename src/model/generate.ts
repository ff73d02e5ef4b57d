/**
 * Batched generation: a prefill of the left-padded prompts, then one decode step per new token,
 * with the KV cache on the host or, where the decoder keeps it there, on the device. Stops per row on a stop token, a stop string or max new tokens.
 */
import type { HostTensor } from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import { attentionMaskFeeds, INPUT, ropeFeeds } from './batch.ts'
import type { LlamaConfig } from './config.ts'
import { type DecodePick, GREEDY_OUTPUTS, KvCache } from './kv-cache.ts'
import { Random } from './random.ts'
import { chooseToken, type SamplingOptions } from './sampling.ts'
import type { TextTokenizer } from './tokenizer.ts'
import type { FloatDType } from './weight-source.ts'

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number
  /** Same seed, same prompts, same options: same tokens. */
  seed: number
  /** Extra token ids that end a row (the model's eos ids always do). */
  stopTokenIds?: readonly number[]
  /** A row ends when its text contains one of these; the text is cut before it. */
  stopStrings?: readonly string[]
}

export interface Generation {
  text: string
  /** Generated token ids (without the stop token). */
  tokens: number[]
  /** The model's log-prob of each generated token. */
  logprobs: number[]
  finishReason: 'stop' | 'length'
}

/** What generation needs from the policy: one run of its decode graph, which adds the weights it feeds. */
export interface Decoder {
  cfg: LlamaConfig
  dtype: FloatDType
  /** One decode step; with `pick` 'greedy' (only when `greedyOnDevice`), the tokens picked on the device. */
  run(feeds: Record<string, HostTensor>, pick?: DecodePick): Promise<Record<string, HostTensor>>
  /** The KV cache stays on the device: `run` neither takes nor returns it (see KvCache). */
  cacheOnDevice?: boolean
  /** Greedy decoding picks its tokens on the device, so no logits come back (see DecodePick). */
  greedyOnDevice?: boolean
  tokenizer: TextTokenizer
  /** Stop token ids of the model (config, generation_config, tokenizer). */
  stopTokenIds: readonly number[]
}

interface RowState {
  tokens: number[]
  logprobs: number[]
  text: string
  done: boolean
  finishReason: 'stop' | 'length'
  nextPosition: number
  rng: Random
}

type Pick = (row: number, rng: Random) => { token: number; logprob: number }

/** Tokens chosen on the host from the rows of the last position's logits. */
function logitsPick(out: Record<string, HostTensor>, vocab: number, opts: SamplingOptions): Pick {
  const logits = out.logits.data as Float32Array
  return (row, rng) => chooseToken(logits, row, vocab, opts, rng)
}

/** Tokens the decode graph picked greedily on the device. */
function greedyPick(out: Record<string, HostTensor>): Pick {
  const tokens = out[GREEDY_OUTPUTS.token].data as BigInt64Array
  const logprobs = out[GREEDY_OUTPUTS.logprob].data as Float32Array
  return (row) => ({ token: Number(tokens[row]), logprob: logprobs[row] })
}

export async function generate(
  dec: Decoder,
  prompts: readonly number[][],
  opts: GenerateOptions,
): Promise<Generation[]> {
  if (prompts.length === 0) return []
  if (prompts.some((p) => p.length === 0)) throw new ValidationError('every prompt needs at least one token')
  const { cfg, dtype } = dec
  const rows = prompts.length
  const stopIds = new Set([...dec.stopTokenIds, ...(opts.stopTokenIds ?? [])])
  const padId = dec.tokenizer.padTokenId ?? 0
  const cache = new KvCache(cfg, rows, dtype, dec.cacheOnDevice)
  const state: RowState[] = prompts.map((p, b) => ({
    tokens: [],
    logprobs: [],
    text: '',
    done: false,
    finishReason: 'length',
    nextPosition: p.length,
    rng: new Random((opts.seed * 7919 + b) >>> 0),
  }))

  // Prefill: prompts left-padded to the longest.
  const width = Math.max(...prompts.map((p) => p.length))
  let ids = new Int32Array(rows * width).fill(padId)
  let mask = new Uint8Array(rows * width)
  let positions = new Int32Array(rows * width)
  prompts.forEach((p, b) => {
    const start = b * width + width - p.length
    p.forEach((id, t) => {
      ids[start + t] = id
      mask[start + t] = 1
      positions[start + t] = t
    })
  })

  const pick: DecodePick = dec.greedyOnDevice && opts.temperature <= 0 ? 'greedy' : 'logits'
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const t = ids.length / rows
    const rope = ropeFeeds(cfg, positions, rows, dtype)
    const feeds: Record<string, HostTensor> = {
      ...cache.feeds(),
      [INPUT.inputIds]: { dtype: 'int64', dims: [rows, t], data: BigInt64Array.from(ids, (v) => BigInt(v)) },
      [INPUT.cos]: rope.cos,
      [INPUT.sin]: rope.sin,
      ...attentionMaskFeeds(cfg, rows, { positions, mask }, cache.keySlots(positions, mask), dtype),
    }
    const out = await dec.run(feeds, pick)
    cache.append(out, positions, mask)
    const choose = pick === 'greedy' ? greedyPick(out) : logitsPick(out, cfg.vocab_size, opts)
    ids = new Int32Array(rows).fill(padId)
    mask = new Uint8Array(rows)
    positions = new Int32Array(rows)
    state.forEach((row, b) => {
      if (row.done) return
      const { token, logprob } = choose(b, row.rng)
      if (stopIds.has(token)) {
        row.done = true
        row.finishReason = 'stop'
        return
      }
      row.tokens.push(token)
      row.logprobs.push(logprob)
      // Text is decoded per token only when stop strings must be watched.
      if (opts.stopStrings?.length) row.text = dec.tokenizer.decode(row.tokens)
      const hit = opts.stopStrings?.map((s) => row.text.indexOf(s)).filter((i) => i >= 0)
      if (hit?.length) {
        row.text = row.text.slice(0, Math.min(...hit))
        row.done = true
        row.finishReason = 'stop'
        return
      }
      ids[b] = token
      mask[b] = 1
      positions[b] = row.nextPosition++
    })
    if (state.every((r) => r.done)) break
  }
  return state.map(({ text, tokens, logprobs, finishReason }) => ({
    text: opts.stopStrings?.length ? text : dec.tokenizer.decode(tokens),
    tokens,
    logprobs,
    finishReason,
  }))
}
