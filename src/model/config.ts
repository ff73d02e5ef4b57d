/**
 * LlamaConfig: the decoder-only architectures we run (llama, mistral, qwen2, qwen3), read from a
 * Hugging Face `config.json`. Field names are HF's (the one sanctioned snake_case island), so a
 * reader can hold this next to the config file and the modeling code.
 */

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number]

/** RoPE scaling the graphs implement (HF `rope_scaling.rope_type`). */
export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const
export type RopeType = (typeof SUPPORTED_ROPE_TYPES)[number]

/** Attention of one layer (HF `layer_types`): over every earlier key, or only the last `sliding_window`. */
export type AttentionKind = 'full_attention' | 'sliding_attention'
const ATTENTION_KINDS: readonly AttentionKind[] = ['full_attention', 'sliding_attention']

export interface RopeScaling {
  rope_type: RopeType
  factor: number
  /** llama3 only. */
  low_freq_factor?: number
  high_freq_factor?: number
  original_max_position_embeddings?: number
}

export interface LlamaConfig {
  model_type: ModelType
  vocab_size: number
  hidden_size: number
  intermediate_size: number
  num_hidden_layers: number
  num_attention_heads: number
  /** Grouped-query attention: num_attention_heads is a multiple of it. */
  num_key_value_heads: number
  head_dim: number
  max_position_embeddings: number
  rms_norm_eps: number
  rope_theta: number
  rope_scaling: RopeScaling | null
  tie_word_embeddings: boolean
  /** Biases on q/k/v projections (qwen2 always; llama's `attention_bias`). */
  attention_bias: boolean
  /** Bias on o_proj (llama `attention_bias` covers it too; qwen2 has none). */
  o_proj_bias: boolean
  mlp_bias: boolean
  /** RMSNorm over each head of q and k before RoPE (qwen3). */
  qk_norm: boolean
  /** Keys further back than this are masked in sliding layers (mistral; qwen2/qwen3 with use_sliding_window). */
  sliding_window: number | null
  /** Per layer, as HF resolves it: 'sliding_attention' only where a window applies. */
  layer_types: AttentionKind[]
  bos_token_id: number | null
  eos_token_id: number[]
  pad_token_id: number | null
}

/** Parses a `config.json` object. Returns the config, or every problem found (never just the first). */
export function parseLlamaConfig(
  json: unknown,
): { config: LlamaConfig; problems: [] } | { problems: string[] } {
  const problems: string[] = []
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { problems: ['config.json is not a JSON object'] }
  }
  const c = json as Record<string, unknown>
  const modelType = c.model_type
  if (!SUPPORTED_MODEL_TYPES.includes(modelType as ModelType)) {
    problems.push(
      `unsupported architecture: model_type ${JSON.stringify(modelType)} (architectures ${JSON.stringify(c.architectures ?? null)}); supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    )
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      problems.push(`${key}: expected a positive integer, got ${JSON.stringify(c[key])}`)
      return 1
    }
    return v
  }
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      problems.push(`${key}: expected a positive number, got ${JSON.stringify(c[key])}`)
      return fallback
    }
    return v
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key] ?? fallback
    if (typeof v !== 'boolean') {
      problems.push(`${key}: expected true or false, got ${JSON.stringify(c[key])}`)
      return fallback
    }
    return v
  }
  const optionalId = (key: string): number | null => {
    const v = c[key]
    if (v === undefined || v === null) return null
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v
    if (Array.isArray(v) && typeof v[0] === 'number') return v[0]
    problems.push(`${key}: expected a token id, got ${JSON.stringify(v)}`)
    return null
  }

  const hidden = int('hidden_size')
  const heads = int('num_attention_heads')
  const kvHeads = int('num_key_value_heads', heads)
  const headDim = c.head_dim === undefined || c.head_dim === null ? hidden / heads : int('head_dim')
  if (!Number.isInteger(headDim)) {
    problems.push(
      `hidden_size ${hidden} is not divisible by num_attention_heads ${heads} and head_dim is not given`,
    )
  }
  if (heads % kvHeads !== 0) {
    problems.push(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`)
  }
  if (headDim % 2 !== 0) problems.push(`head_dim ${headDim} must be even for rotary embeddings`)
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu'
  if (act !== 'silu') problems.push(`hidden_act ${JSON.stringify(act)} is not supported (only silu)`)

  const isQwen2 = modelType === 'qwen2'
  const attentionBias = isQwen2 ? true : bool('attention_bias', false)
  const eos = c.eos_token_id
  const eosIds =
    eos === undefined || eos === null
      ? []
      : (Array.isArray(eos) ? eos : [eos]).filter((v): v is number => typeof v === 'number')

  const layers = int('num_hidden_layers')
  const window = slidingWindow(c, problems)
  const config: LlamaConfig = {
    model_type: (modelType as ModelType) ?? 'llama',
    vocab_size: int('vocab_size'),
    hidden_size: hidden,
    intermediate_size: int('intermediate_size'),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: int('max_position_embeddings', 2048),
    rms_norm_eps: num('rms_norm_eps', 1e-6),
    rope_theta: num('rope_theta', 10000),
    rope_scaling: parseRopeScaling(c.rope_scaling, problems),
    tie_word_embeddings: bool('tie_word_embeddings', false),
    attention_bias: attentionBias,
    o_proj_bias: isQwen2 ? false : attentionBias,
    mlp_bias: isQwen2 ? false : bool('mlp_bias', false),
    qk_norm: modelType === 'qwen3',
    sliding_window: window,
    layer_types: layerTypes(c, layers, window, problems),
    bos_token_id: optionalId('bos_token_id'),
    eos_token_id: eosIds,
    pad_token_id: optionalId('pad_token_id'),
  }
  return problems.length > 0 ? { problems } : { config, problems: [] }
}

function parseRopeScaling(v: unknown, problems: string[]): RopeScaling | null {
  if (v === undefined || v === null) return null
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push(`rope_scaling: expected an object or null, got ${JSON.stringify(v)}`)
    return null
  }
  const r = v as Record<string, unknown>
  const type = (r.rope_type ?? r.type ?? 'default') as string
  if (!SUPPORTED_ROPE_TYPES.includes(type as RopeType)) {
    problems.push(
      `rope_scaling: rope_type ${JSON.stringify(type)} is not supported (${SUPPORTED_ROPE_TYPES.join(', ')})`,
    )
    return null
  }
  const factor = typeof r.factor === 'number' ? r.factor : 1
  const scaling: RopeScaling = { rope_type: type as RopeType, factor }
  if (type === 'llama3') {
    for (const key of ['low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const) {
      if (typeof r[key] !== 'number') problems.push(`rope_scaling.${key}: required for llama3 scaling`)
      else scaling[key] = r[key] as number
    }
  }
  return scaling
}

function slidingWindow(c: Record<string, unknown>, problems: string[]): number | null {
  const active = c.model_type === 'mistral' || c.use_sliding_window === true
  const w = c.sliding_window
  if (!active || w === undefined || w === null) return null
  if (typeof w !== 'number' || !Number.isInteger(w) || w <= 0) {
    problems.push(`sliding_window: expected a positive integer or null, got ${JSON.stringify(w)}`)
    return null
  }
  return w
}

/**
 * Which layers slide, as HF's configs resolve it: `layer_types` when the config gives them; else
 * every layer for mistral, and for qwen2/qwen3 the layers from `max_window_layers` (default 28) on.
 */
function layerTypes(
  c: Record<string, unknown>,
  layers: number,
  window: number | null,
  problems: string[],
): AttentionKind[] {
  const full = Array<AttentionKind>(layers).fill('full_attention')
  if (window === null) return full
  const given = c.layer_types
  if (given !== undefined && given !== null) {
    if (
      !Array.isArray(given) ||
      given.length !== layers ||
      !given.every((t) => ATTENTION_KINDS.includes(t as AttentionKind))
    ) {
      problems.push(
        `layer_types: expected ${layers} entries of ${ATTENTION_KINDS.map((k) => JSON.stringify(k)).join(' or ')}, got ${JSON.stringify(given)}`,
      )
      return full
    }
    return given as AttentionKind[]
  }
  if (c.model_type === 'mistral') return full.fill('sliding_attention')
  const from = c.max_window_layers ?? 28
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 0) {
    problems.push(`max_window_layers: expected an integer >= 0, got ${JSON.stringify(from)}`)
    return full
  }
  return full.map((kind, i) => (i >= from ? 'sliding_attention' : kind))
}

/**
 * RoPE inverse frequencies (head_dim / 2 of them) with the config's scaling applied, as HF's
 * `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters` and
 * `_compute_llama3_parameters` compute them.
 */
export function ropeInverseFrequencies(cfg: LlamaConfig): Float64Array {
  const half = cfg.head_dim / 2
  const inv = new Float64Array(half)
  for (let i = 0; i < half; i++) inv[i] = 1 / cfg.rope_theta ** ((2 * i) / cfg.head_dim)
  const s = cfg.rope_scaling
  if (!s || s.rope_type === 'default') return inv
  if (s.rope_type === 'linear') return inv.map((f) => f / s.factor)
  // llama3: long wavelengths are divided by the factor, short ones kept, the band between blended.
  const oldContext = s.original_max_position_embeddings!
  const lowWavelen = oldContext / s.low_freq_factor!
  const highWavelen = oldContext / s.high_freq_factor!
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f
    if (wavelen < highWavelen) return f
    if (wavelen > lowWavelen) return f / s.factor
    const smooth = (oldContext / wavelen - s.low_freq_factor!) / (s.high_freq_factor! - s.low_freq_factor!)
    return (1 - smooth) * (f / s.factor) + smooth * f
  })
}

/** Number of parameters of the model (tied embeddings counted once). */
export function parameterCount(cfg: LlamaConfig): number {
  const h = cfg.hidden_size
  const q = cfg.num_attention_heads * cfg.head_dim
  const kv = cfg.num_key_value_heads * cfg.head_dim
  const attn = h * q * 2 + h * kv * 2 + (cfg.attention_bias ? q + 2 * kv : 0) + (cfg.o_proj_bias ? h : 0)
  const mlp = 3 * h * cfg.intermediate_size + (cfg.mlp_bias ? 2 * cfg.intermediate_size + h : 0)
  const norms = 2 * h + (cfg.qk_norm ? 2 * cfg.head_dim : 0)
  const embed = cfg.vocab_size * h
  return cfg.num_hidden_layers * (attn + mlp + norms) + h + embed * (cfg.tie_word_embeddings ? 1 : 2)
}
