/** Real checkpoint shapes the memory benches build with random weights. */

/** Qwen2.5-0.5B's config; benches choose num_hidden_layers (24 in the real model). */
export const QWEN2_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  head_dim: 64,
  vocab_size: 151936,
  tie_word_embeddings: true,
}

/** LoRA r16 on every linear layer of a decoder, the usual fine-tuning recipe for these sizes. */
export const LORA_ALL_LINEAR = {
  rank: 16,
  alpha: 32,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
}
