/**
 * The KV cache of batched decoding, held on the host: per layer, keys and values (B, KV, C, D) with
 * capacity C grown in steps. The decode graph takes the cache as `past_key_values.i.key/value`
 * (fed without a copy), attends over cache + new tokens, and returns only the new tokens' keys and
 * values as `present.i.key/value`, which `append` writes into the next free slots.
 */
import {
  argMax,
  Graph,
  type HostTensor,
  logSoftmaxDecomposed,
  reduceMax,
  reshape,
  slice,
} from '../engine/index.ts'
import type { KeyValue } from './attention.ts'
import { declareDecoderInputs } from './batch.ts'
import type { LlamaConfig } from './config.ts'
import { type BindOptions, bindModel, type ModelTensors } from './graphs.ts'
import { llamaModel, lmHead } from './llama.ts'
import type { FloatDType } from './weight-source.ts'

export const pastName = (i: number, kind: 'key' | 'value'): string => `past_key_values.${i}.${kind}`
export const presentName = (i: number, kind: 'key' | 'value'): string => `present.${i}.${kind}`

/**
 * What a decode graph returns for the next token: the last position's logits (B, V), from which the
 * host samples; or, for greedy decoding on a device, each row's pick there (GREEDY_OUTPUTS), so that
 * 12 bytes a row come back instead of a row of logits.
 */
export type DecodePick = 'logits' | 'greedy'

/** The greedy pick: the next token of each row (argmax of its logits, int64) and its log-prob. */
export const GREEDY_OUTPUTS = { token: 'greedy.token', logprob: 'greedy.logprob' } as const

/** Slots added when the cache is full: growth copies the cache, so it happens every GROW steps only. */
const GROW = 32

/**
 * The decode graph: tokens (B, T) after a cache of `past` slots -> the next token's `pick` (logits by
 * default) and the new keys/values of every layer; with `cacheOnDevice`, every layer's whole cache
 * (past + T slots) instead, which a device-resident cache takes as its next `past`.
 */
export function buildDecodeGraph(
  model: ModelTensors,
  opts: BindOptions & { cacheOnDevice?: boolean; pick?: DecodePick },
): Graph {
  const g = new Graph({ name: 'decode', fusedMatMul: opts.fusedMatMul })
  const dtype = opts.dtype ?? 'float32'
  const { cfg } = model
  const { ctx } = bindModel(g, model, opts)
  const inputs = declareDecoderInputs(g, cfg, dtype, { rows: 'batch', seq: 'seq', keys: 'keys' })
  const past: KeyValue[] = []
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const shape = ['batch', cfg.num_key_value_heads, 'past', cfg.head_dim]
    past.push({
      key: g.input(pastName(i, 'key'), dtype, shape),
      value: g.input(pastName(i, 'value'), dtype, shape),
    })
  }
  const { hidden, present, caches } = llamaModel(ctx, { ...inputs, past })
  const last = g.withScopePath('lm_head', () =>
    reshape(g, slice(g, hidden, { starts: [-1], ends: [2 ** 62], axes: [1] }), {
      shape: [0, cfg.hidden_size],
    }),
  ) // (B, H)
  const logits = lmHead(ctx, last) // (B, V)
  if (opts.pick === 'greedy') {
    g.withScopePath('greedy', () => {
      g.output(argMax(g, logits, { axis: 1 }), GREEDY_OUTPUTS.token)
      // The argmax's log-prob is the largest one: no int64 gather, which would leave the GPU.
      const logp = logSoftmaxDecomposed(g, logits, 1)
      g.output(reduceMax(g, logp, { axes: [1] }), GREEDY_OUTPUTS.logprob)
    })
  } else {
    g.output(logits, 'logits')
  }
  const kept = opts.cacheOnDevice ? caches : present
  kept.forEach((kv: KeyValue, i) => {
    g.output(kv.key, presentName(i, 'key'))
    g.output(kv.value, presentName(i, 'value'))
  })
  return g
}

/** The state entries a device-resident cache keeps, by the decode graph's output that replaces each. */
export function deviceCacheOutputs(cfg: LlamaConfig): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < cfg.num_hidden_layers; i++)
    for (const kind of ['key', 'value'] as const) out[presentName(i, kind)] = pastName(i, kind)
  return out
}

/**
 * Which key slot holds which position, and the cached keys/values themselves unless the cache lives
 * on the device (`onDevice`: the decode graph joins past and present there and its state outputs
 * replace the cache, so only this bookkeeping stays on the host and the cache is exactly as long as
 * the tokens seen).
 */
export class KvCache {
  capacity = 0
  /** Filled slots (the same for every row; padding slots are masked). */
  length = 0
  private keys: Float32Array[] | Float64Array[] = []
  private values: Float32Array[] | Float64Array[] = []
  /** (B, C) position of the token in each slot and whether it is real. */
  positions = new Int32Array(0)
  mask = new Uint8Array(0)

  constructor(
    private readonly cfg: LlamaConfig,
    readonly rows: number,
    private readonly dtype: FloatDType = 'float32',
    private readonly onDevice = false,
  ) {}

  private alloc(n: number): Float32Array | Float64Array {
    return this.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n)
  }

  /** Makes room for `extra` more slots, copying the cache into a larger layout when needed. */
  private reserve(extra: number): void {
    const need = this.length + extra
    if (need <= this.capacity) return
    const cap = this.onDevice ? need : Math.ceil(need / GROW) * GROW
    const { rows } = this
    const heads = rows * this.cfg.num_key_value_heads
    const d = this.cfg.head_dim
    const grow = (old: Float32Array | Float64Array) => {
      const next = this.alloc(heads * cap * d)
      for (let h = 0; h < heads; h++)
        next.set(old.subarray(h * this.capacity * d, (h * this.capacity + this.length) * d), h * cap * d)
      return next
    }
    const layers = this.onDevice ? 0 : this.cfg.num_hidden_layers
    this.keys = Array.from({ length: layers }, (_, i) =>
      grow(this.keys[i] ?? this.alloc(0)),
    ) as Float32Array[]
    this.values = Array.from({ length: layers }, (_, i) =>
      grow(this.values[i] ?? this.alloc(0)),
    ) as Float32Array[]
    const positions = new Int32Array(rows * cap)
    const mask = new Uint8Array(rows * cap)
    for (let b = 0; b < rows; b++) {
      positions.set(this.positions.subarray(b * this.capacity, b * this.capacity + this.length), b * cap)
      mask.set(this.mask.subarray(b * this.capacity, b * this.capacity + this.length), b * cap)
    }
    this.positions = positions
    this.mask = mask
    this.capacity = cap
  }

  /** The cache as graph feeds: every layer's past keys/values (B, KV, C, D); none from a device cache. */
  feeds(): Record<string, HostTensor> {
    const dims = [this.rows, this.cfg.num_key_value_heads, this.capacity, this.cfg.head_dim]
    const out: Record<string, HostTensor> = {}
    for (let i = 0; i < (this.onDevice ? 0 : this.cfg.num_hidden_layers); i++) {
      out[pastName(i, 'key')] = { dtype: this.dtype, dims, data: this.keys[i] ?? this.alloc(0) }
      out[pastName(i, 'value')] = { dtype: this.dtype, dims, data: this.values[i] ?? this.alloc(0) }
    }
    return out
  }

  /**
   * The key slots a step attends over: the cache (capacity C, unused slots masked) followed by the
   * step's T tokens.
   */
  keySlots(positions: Int32Array, mask: Uint8Array): { positions: Int32Array; mask: Uint8Array } {
    const t = positions.length / this.rows
    const c = this.capacity
    const keyPositions = new Int32Array(this.rows * (c + t))
    const keyMask = new Uint8Array(this.rows * (c + t))
    for (let b = 0; b < this.rows; b++) {
      keyPositions.set(this.positions.subarray(b * c, (b + 1) * c), b * (c + t))
      keyMask.set(this.mask.subarray(b * c, b * c + this.length), b * (c + t))
      keyPositions.set(positions.subarray(b * t, (b + 1) * t), b * (c + t) + c)
      keyMask.set(mask.subarray(b * t, (b + 1) * t), b * (c + t) + c)
    }
    return { positions: keyPositions, mask: keyMask }
  }

  /** Writes a step's new keys/values (B, KV, T, D) and its token slots into the next free slots. */
  append(outputs: Readonly<Record<string, HostTensor>>, positions: Int32Array, mask: Uint8Array): void {
    const t = positions.length / this.rows
    this.reserve(t)
    const heads = this.rows * this.cfg.num_key_value_heads
    const d = this.cfg.head_dim
    for (let i = 0; i < (this.onDevice ? 0 : this.cfg.num_hidden_layers); i++) {
      for (const [kind, store] of [
        ['key', this.keys[i]],
        ['value', this.values[i]],
      ] as const) {
        const src = outputs[presentName(i, kind)].data as Float32Array
        for (let h = 0; h < heads; h++)
          store.set(src.subarray(h * t * d, (h + 1) * t * d), (h * this.capacity + this.length) * d)
      }
    }
    for (let b = 0; b < this.rows; b++) {
      this.positions.set(positions.subarray(b * t, (b + 1) * t), b * this.capacity + this.length)
      this.mask.set(mask.subarray(b * t, (b + 1) * t), b * this.capacity + this.length)
    }
    this.length += t
  }
}
