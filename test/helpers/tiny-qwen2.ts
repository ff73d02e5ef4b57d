/** A Qwen2 config small enough for float64 finite differences: 2 layers, GQA 4/2, a 23-token vocabulary. */
import assert from 'node:assert/strict'
import { type LlamaConfig, parseLlamaConfig } from '../../src/model/config.ts'

export const TINY_QWEN2_JSON = {
  model_type: 'qwen2',
  vocab_size: 23,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rope_theta: 10000,
  tie_word_embeddings: true,
}

/** The parsed config of `json` (TINY_QWEN2_JSON with overrides, say); fails the test if it does not parse. */
export function tinyConfig(json: Record<string, unknown> = TINY_QWEN2_JSON): LlamaConfig {
  const parsed = parseLlamaConfig(json)
  assert.ok('config' in parsed, JSON.stringify(parsed))
  return parsed.config
}
