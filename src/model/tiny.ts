/**
 * Tiny Llama-architecture models the project makes itself (no pretrained weights can be
 * downloaded): seeded random weights initialised as transformers does (normal(0, 0.02), norms at
 * one), a byte-level BPE tokenizer learned from a built-in corpus, and a ChatML chat template, all
 * in the Hugging Face folder layout.
 */
import path from 'node:path'
import { writeFolderAtomically, writeJson } from './atomic-folder.ts'
import { byteLevelTokenizerJson, trainByteLevelBpe } from './bpe-trainer.ts'
import { type LlamaConfig, parameterCount, parseLlamaConfig } from './config.ts'
import { normalArray, Random } from './random.ts'
import { writeSafetensors } from './safetensors.ts'
import { expectedWeightShapes, SINGLE_FILE, type Weights } from './weights.ts'

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

/** Architecture sizes: 'tiny' ~1M parameters (tests, demo); '10m' and '50m' for benchmarks. */
export const TINY_PRESETS = {
  tiny: {
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 512,
  },
  '10m': {
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 12,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 4096,
  },
  '50m': {
    hidden_size: 512,
    intermediate_size: 1376,
    num_hidden_layers: 16,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 8192,
  },
} as const
export type TinyPreset = keyof typeof TINY_PRESETS

/** A small built-in corpus: plain sentences, chat turns, numbers and the task words of the demo. */
const CORPUS = `
The quick brown fox jumps over the lazy dog. A helpful answer is clear, short and correct.
What is the capital of France? The capital of France is Paris. The capital of Italy is Rome.
The capital of Germany is Berlin. The capital of Spain is Madrid. The capital of Japan is Tokyo.
What is 2 + 3? The answer is 5. What is 7 + 8? The answer is 15. What is 12 - 4? The answer is 8.
What is 6 * 7? The answer is 42. Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 100.
The opposite of hot is cold. The opposite of big is small. The opposite of happy is sad.
Please be polite and kind. Thank you for your question. I am happy to help you with that.
The user asks a question and the assistant gives an answer. The assistant is honest and helpful.
Write a short story about a cat. Once upon a time there was a little cat who lived in a house.
The sun is bright today, and the sky is blue. We went to the market and bought some apples.
Here is the answer: the result is correct. Let me think step by step. First, we add the numbers.
Then we check the result. Finally, we write the answer in one sentence. Is that right? Yes, it is.
This is a good response because it is accurate, concise and friendly. This response is not good.
system user assistant question answer response principle feature good bad better worse
`

export interface TinyModelOptions {
  seed: number
  preset?: TinyPreset
  /** Extra config.json fields (e.g. tie_word_embeddings: false). */
  overrides?: Record<string, unknown>
}

export interface TinyModelInfo {
  dir: string
  config: LlamaConfig
  parameters: number
  bytes: number
}

/** The config.json of a preset (token ids point at the tokenizer's special tokens). */
export function tinyConfigJson(
  preset: TinyPreset,
  specialIds: Record<string, number>,
): Record<string, unknown> {
  const p = TINY_PRESETS[preset]
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    ...p,
    head_dim: p.hidden_size / p.num_attention_heads,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: true,
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    bos_token_id: specialIds['<|endoftext|>'],
    eos_token_id: specialIds['<|im_end|>'],
    pad_token_id: specialIds['<|endoftext|>'],
    torch_dtype: 'float32',
  }
}

/** Random weights as transformers initialises them: normal(0, std) matrices, zero biases, unit norms. */
export function randomWeights(cfg: LlamaConfig, seed: number, std = 0.02): Weights {
  const rng = new Random(seed)
  const weights: Weights = new Map()
  for (const [key, shape] of expectedWeightShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1)
    let data: Float32Array
    if (key.endsWith('norm.weight')) data = new Float32Array(n).fill(1)
    else if (key.endsWith('.bias')) data = new Float32Array(n)
    else data = normalArray(rng, n, std)
    weights.set(key, { shape, data })
  }
  return weights
}

/** Writes a seeded random model with tokenizer and chat template into `dir` (atomically). */
export async function makeTinyModel(dir: string, opts: TinyModelOptions): Promise<TinyModelInfo> {
  const preset = opts.preset ?? 'tiny'
  const vocabSize = TINY_PRESETS[preset].vocab_size
  const bpe = trainByteLevelBpe(CORPUS, Math.min(512, vocabSize) - 256 - SPECIAL_TOKENS.length)
  const tokenizerJson = byteLevelTokenizerJson(bpe, SPECIAL_TOKENS)
  const specialIds = Object.fromEntries(SPECIAL_TOKENS.map((t, i) => [t, bpe.vocab.size + i]))
  const configJson = { ...tinyConfigJson(preset, specialIds), ...opts.overrides }
  const parsed = parseLlamaConfig(configJson)
  if (!('config' in parsed))
    throw new Error(`tiny preset '${preset}' is invalid: ${parsed.problems.join('; ')}`)
  const config = parsed.config
  const weights = randomWeights(config, opts.seed)
  const bytes = await writeFolderAtomically(dir, async (tmp) => {
    await writeJson(path.join(tmp, 'config.json'), configJson)
    await writeJson(path.join(tmp, 'generation_config.json'), {
      bos_token_id: config.bos_token_id,
      eos_token_id: [specialIds['<|im_end|>'], specialIds['<|endoftext|>']],
      pad_token_id: config.pad_token_id,
    })
    await writeSafetensors(path.join(tmp, SINGLE_FILE), weights, { metadata: { format: 'pt' } })
    await writeJson(path.join(tmp, 'tokenizer.json'), tokenizerJson)
    await writeJson(path.join(tmp, 'tokenizer_config.json'), {
      add_bos_token: false,
      add_eos_token: false,
      bos_token: null,
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      model_max_length: config.max_position_embeddings,
      clean_up_tokenization_spaces: false,
      tokenizer_class: 'PreTrainedTokenizerFast',
      chat_template: CHATML_TEMPLATE,
    })
  })
  return { dir: path.resolve(dir), config, parameters: parameterCount(config), bytes }
}
