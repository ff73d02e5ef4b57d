/**
 * Real checkpoint shapes the benches build with random weights: the architecture fields of each
 * model's Hugging Face config.json, as published.
 */

/** Qwen2.5-0.5B (494M parameters); some benches choose fewer layers. */
export const QWEN2_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  head_dim: 64,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
}

/** Llama-3.2-1B (1.24B parameters). */
export const LLAMA32_1B = {
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    rope_type: 'llama3',
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
  tie_word_embeddings: true,
}

/** Qwen2.5-1.5B (1.54B parameters). */
export const QWEN25_15B = {
  ...QWEN2_05B,
  hidden_size: 1536,
  intermediate_size: 8960,
  num_hidden_layers: 28,
  num_attention_heads: 12,
  head_dim: 128,
  max_position_embeddings: 131072,
}

/** Qwen2.5-3B (3.09B parameters). */
export const QWEN25_3B = {
  ...QWEN2_05B,
  hidden_size: 2048,
  intermediate_size: 11008,
  num_hidden_layers: 36,
  num_attention_heads: 16,
  head_dim: 128,
}

/** The shapes bench/scale.ts measures, by the size in their names. */
export const REAL_SHAPES = {
  '0.5b': { name: 'Qwen2.5-0.5B', config: QWEN2_05B },
  '1b': { name: 'Llama-3.2-1B', config: LLAMA32_1B },
  '1.5b': { name: 'Qwen2.5-1.5B', config: QWEN25_15B },
  '3b': { name: 'Qwen2.5-3B', config: QWEN25_3B },
}
export type RealShape = keyof typeof REAL_SHAPES

/** LoRA r16 on every linear layer of a decoder, the usual fine-tuning recipe for these sizes. */
export const LORA_ALL_LINEAR = {
  rank: 16,
  alpha: 32,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
}
