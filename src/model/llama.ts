/**
 * The Llama-family decoder (llama, mistral, qwen2, qwen3), read top-down as HF's LlamaForCausalLM:
 * embed_tokens -> decoder layer x N -> norm -> lm_head. One builder serves the log-prob, training
 * and decode graphs; the KV cache is explicit I/O.
 */
import { add, concat, fusedMatMul, slice, type Tensor, unsqueeze } from '../engine/index.ts'
import { type AttentionInputs, attention, type KeyValue, queryRotation } from './attention.ts'
import { chunkRanges, defaultVocabChunks } from './chunked-logps.ts'
import type { AttentionKind } from './config.ts'
import { type ModelContext, rmsNorm } from './layers.ts'
import { mlp } from './mlp.ts'
import { gatherRows, type HalfWeight, upcastBits } from './weight-source.ts'
import { layerPrefix } from './weights.ts'

export interface DecoderInputs {
  /** (B, T) int64 */
  inputIds: Tensor
  /** (B, T, D): rotation cos/sin of each token's position. */
  cos: Tensor
  sin: Tensor
  /** (B, 1, T, S): additive attention mask (causal, padding, window) of each kind of layer the model has. */
  masks: Partial<Record<AttentionKind, Tensor>>
  /** Per layer: cached keys/values of earlier positions. */
  past?: KeyValue[]
}

/** One decoder layer: the residual stream gets attention, then the MLP, each after its RMSNorm. */
function decoderLayer(
  ctx: ModelContext,
  x: Tensor,
  i: number,
  inputs: AttentionInputs,
): { x: Tensor; present: KeyValue; cache: KeyValue } {
  const p = layerPrefix(i)
  const attn = attention(ctx, rmsNorm(ctx, x, `${p}.input_layernorm`), `${p}.self_attn`, inputs)
  x = ctx.g.withScopePath(p, () => add(ctx.g, x, attn.out))
  const ff = mlp(ctx, rmsNorm(ctx, x, `${p}.post_attention_layernorm`), `${p}.mlp`)
  return { x: ctx.g.withScopePath(p, () => add(ctx.g, x, ff)), present: attn.present, cache: attn.cache }
}

/**
 * The base model (HF LlamaModel): final hidden states (B, T, H) and each layer's present K/V (this
 * call's tokens) and whole cache (past and present).
 */
export function llamaModel(
  ctx: ModelContext,
  inputs: DecoderInputs,
): { hidden: Tensor; present: KeyValue[]; caches: KeyValue[] } {
  const { g, cfg, w } = ctx
  let x = g.withScopePath('model.embed_tokens', () =>
    gatherRows(g, w, 'model.embed_tokens.weight', inputs.inputIds),
  ) // (B, T, H)
  const [cos, sin] = g.withScopePath('model.rotary_emb', () => [
    unsqueeze(g, inputs.cos, { axes: [1] }), // (B, 1, T, D)
    unsqueeze(g, inputs.sin, { axes: [1] }),
  ])
  const query = g.withScopePath('model.rotary_emb', () => queryRotation(g, cfg.head_dim, cos, sin))
  const present: KeyValue[] = []
  const caches: KeyValue[] = []
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const layerInput = x
    const bias = inputs.masks[cfg.layer_types[i]]!
    const run = () => decoderLayer(ctx, layerInput, i, { cos, sin, query, bias, past: inputs.past?.[i] })
    // Checkpointed, the backward keeps only each layer's input (B, T, H) and recomputes the rest.
    const layer = ctx.checkpoint ? g.checkpoint([layerInput], run) : run()
    x = layer.x
    present.push(layer.present)
    caches.push(layer.cache)
  }
  return { hidden: rmsNorm(ctx, x, 'model.norm'), present, caches }
}

const lmHeadKey = (ctx: ModelContext): string =>
  ctx.cfg.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'

/**
 * The LM head's weight (the embedding matrix when embeddings are tied): a float tensor, or the bits
 * of a half one with their upcast table (for heads that upcast a chunk at a time).
 */
export function lmHeadWeight(ctx: ModelContext): { weight: Tensor; half?: HalfWeight } {
  const half = ctx.w.half(lmHeadKey(ctx))
  return half ? { weight: half.bits, half } : { weight: ctx.w.get(lmHeadKey(ctx)) }
}

/** Logits (…, V) of hidden states (…, H); a half weight is upcast one vocabulary chunk at a time. */
export function lmHead(ctx: ModelContext, hidden: Tensor): Tensor {
  const { g, cfg } = ctx
  return g.withScopePath('lm_head', () => {
    const { weight, half } = lmHeadWeight(ctx)
    if (!half) return fusedMatMul(g, hidden, weight, { transB: true })
    const parts = chunkRanges(cfg.vocab_size, defaultVocabChunks(cfg.vocab_size)).map(([lo, hi]) => {
      const bits = slice(g, weight, { starts: [lo], ends: [hi], axes: [0] })
      return fusedMatMul(g, hidden, upcastBits(g, { bits, table: half.table }), { transB: true })
    })
    return parts.length === 1 ? parts[0] : concat(g, ...parts, { axis: -1 })
  })
}
