/**
 * Model weights under their Hugging Face keys (`model.layers.0.mlp.gate_proj.weight`), loaded from
 * `model.safetensors` or a sharded `model.safetensors.index.json`. Loading checks that key sets and
 * shapes match the config exactly and names every missing, unexpected or misshapen tensor.
 */
import { access, readFile } from 'node:fs/promises'
import path from 'node:path'
import { ModelLoadError } from '../errors.ts'
import type { LlamaConfig } from './config.ts'
import {
  type FloatTensor,
  readSafetensors,
  readSafetensorsHeader,
  type StorageDType,
  type StoredTensor,
  type WeightDestination,
} from './safetensors.ts'

export type { FloatTensor } from './safetensors.ts'

/** Weights by HF key. */
export type Weights = Map<string, FloatTensor>
/** Weights by HF key, some possibly stored in a half type (frozen ones). */
export type StoredWeights = Map<string, StoredTensor>

export const SINGLE_FILE = 'model.safetensors'
export const INDEX_FILE = 'model.safetensors.index.json'

/** Key prefix of decoder layer i, its HF module path. */
export const layerPrefix = (i: number): string => `model.layers.${i}`

/** Every weight the config implies, with its shape (HF layout: Linear weights are [out, in]). */
export function expectedWeightShapes(cfg: LlamaConfig): Map<string, number[]> {
  const h = cfg.hidden_size
  const q = cfg.num_attention_heads * cfg.head_dim
  const kv = cfg.num_key_value_heads * cfg.head_dim
  const m = cfg.intermediate_size
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [cfg.vocab_size, h]]])
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = layerPrefix(i)
    shapes.set(`${p}.input_layernorm.weight`, [h])
    const proj: [string, number, number, boolean][] = [
      ['self_attn.q_proj', q, h, cfg.attention_bias],
      ['self_attn.k_proj', kv, h, cfg.attention_bias],
      ['self_attn.v_proj', kv, h, cfg.attention_bias],
      ['self_attn.o_proj', h, q, cfg.o_proj_bias],
      ['mlp.gate_proj', m, h, cfg.mlp_bias],
      ['mlp.up_proj', m, h, cfg.mlp_bias],
      ['mlp.down_proj', h, m, cfg.mlp_bias],
    ]
    for (const [name, out, inp, bias] of proj) {
      shapes.set(`${p}.${name}.weight`, [out, inp])
      if (bias) shapes.set(`${p}.${name}.bias`, [out])
    }
    if (cfg.qk_norm) {
      shapes.set(`${p}.self_attn.q_norm.weight`, [cfg.head_dim])
      shapes.set(`${p}.self_attn.k_norm.weight`, [cfg.head_dim])
    }
    shapes.set(`${p}.post_attention_layernorm.weight`, [h])
  }
  shapes.set('model.norm.weight', [h])
  if (!cfg.tie_word_embeddings) shapes.set('lm_head.weight', [cfg.vocab_size, h])
  return shapes
}

/** Stored tensors HF itself ignores when loading: RoPE buffers of old checkpoints, a tied head's copy. */
function ignoredKey(key: string, cfg: LlamaConfig): boolean {
  return key.endsWith('.rotary_emb.inv_freq') || (cfg.tie_word_embeddings && key === 'lm_head.weight')
}

/** Which file holds each tensor, from the index or the single file's header. */
async function locateTensors(dir: string): Promise<Map<string, string>> {
  const indexPath = path.join(dir, INDEX_FILE)
  if (await exists(indexPath)) {
    let index: { weight_map?: Record<string, string> }
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8'))
    } catch (err) {
      throw new ModelLoadError(`${indexPath}: not valid JSON`, undefined, { cause: err })
    }
    if (!index.weight_map || typeof index.weight_map !== 'object') {
      throw new ModelLoadError(`${indexPath}: no weight_map`)
    }
    return new Map(Object.entries(index.weight_map).map(([k, f]) => [k, path.join(dir, f)]))
  }
  const single = path.join(dir, SINGLE_FILE)
  const header = await readSafetensorsHeader(single)
  return new Map(Object.keys(header.tensors).map((k) => [k, single]))
}

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}

/** Problems of a key set against the config: missing, unexpected and misshapen tensors, by name. */
export function checkWeightShapes(
  cfg: LlamaConfig,
  found: ReadonlyMap<string, readonly number[]>,
  expected = expectedWeightShapes(cfg),
): string[] {
  const missing = [...expected.keys()].filter((k) => !found.has(k))
  const unexpected = [...found.keys()].filter((k) => !expected.has(k) && !ignoredKey(k, cfg))
  const problems: string[] = []
  if (missing.length) problems.push(`missing weights (${missing.length}): ${missing.join(', ')}`)
  if (unexpected.length) problems.push(`unexpected weights (${unexpected.length}): ${unexpected.join(', ')}`)
  for (const [key, want] of expected) {
    const got = found.get(key)
    if (got && (got.length !== want.length || got.some((d, i) => d !== want[i]))) {
      problems.push(`${key}: shape [${got.join(', ')}], config implies [${want.join(', ')}]`)
    }
  }
  return problems
}

/**
 * Lists the problems of a folder's weights against the config without reading their data
 * (headers only); an empty list means loadWeights will succeed.
 */
export async function inspectWeights(dir: string, cfg: LlamaConfig): Promise<string[]> {
  const hasIndex = await exists(path.join(dir, INDEX_FILE))
  if (!hasIndex && !(await exists(path.join(dir, SINGLE_FILE)))) {
    return [`no weights: neither ${SINGLE_FILE} nor ${INDEX_FILE} in ${dir}`]
  }
  let located: Map<string, string>
  try {
    located = await locateTensors(dir)
  } catch (err) {
    return [(err as Error).message]
  }
  const shapes = new Map<string, number[]>()
  const problems: string[] = []
  for (const file of new Set(located.values())) {
    if (!(await exists(file))) {
      problems.push(`missing shard: ${path.basename(file)} (named in ${INDEX_FILE})`)
      continue
    }
    try {
      const header = await readSafetensorsHeader(file)
      for (const [k, info] of Object.entries(header.tensors)) {
        if (located.get(k) === file) shapes.set(k, info.shape)
      }
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  if (problems.length) return problems
  return checkWeightShapes(cfg, shapes)
}

/**
 * Reads every weight the config needs, as float32 or stored as `storage`, each once. Throws
 * ModelLoadError listing all problems.
 */
export async function loadWeights(dir: string, cfg: LlamaConfig): Promise<Weights>
export async function loadWeights(
  dir: string,
  cfg: LlamaConfig,
  storage: StorageDType,
  into?: WeightDestination,
): Promise<StoredWeights>
export async function loadWeights(
  dir: string,
  cfg: LlamaConfig,
  storage: StorageDType = 'float32',
  into?: WeightDestination,
): Promise<StoredWeights> {
  const problems = await inspectWeights(dir, cfg)
  if (problems.length) {
    throw new ModelLoadError(`cannot load weights from ${dir}:\n  ${problems.join('\n  ')}`, { problems })
  }
  const located = await locateTensors(dir)
  const expected = expectedWeightShapes(cfg)
  const byFile = new Map<string, string[]>()
  for (const key of expected.keys()) {
    const file = located.get(key)!
    byFile.set(file, [...(byFile.get(file) ?? []), key])
  }
  const weights: StoredWeights = new Map()
  for (const [file, keys] of byFile) {
    for (const [k, t] of await readSafetensors(file, keys, storage, into)) weights.set(k, t)
  }
  // Deterministic key order: the config's order.
  return new Map([...expected.keys()].map((k) => [k, weights.get(k)!]))
}
