/**
 * Opens a local Hugging Face model folder: config, weights, tokenizer, chat template. A folder that
 * is incomplete or of an unsupported architecture fails with one ModelLoadError listing every
 * problem found, so a user fixes the folder in one go.
 */
import path from 'node:path'
import { ModelLoadError } from '../errors.ts'
import { ChatTemplate } from './chat-template.ts'
import { type LlamaConfig, parseLlamaConfig } from './config.ts'
import type { StorageDType, WeightDestination } from './safetensors.ts'
import { readJson, TextTokenizer, TOKENIZER_FILE } from './tokenizer.ts'
import { exists, inspectWeights, loadWeights, type StoredWeights, type Weights } from './weights.ts'

export const CONFIG_FILE = 'config.json'
export const GENERATION_CONFIG_FILE = 'generation_config.json'

export interface LoadedModel<W extends StoredWeights = Weights> {
  dir: string
  config: LlamaConfig
  weights: W
  tokenizer: TextTokenizer
  chatTemplate: ChatTemplate | null
  /** Token ids that end generation: config, generation_config.json and the tokenizer's eos token. */
  stopTokenIds: number[]
}

/** Config and every problem of a folder, without reading weight data. */
async function inspect(dir: string): Promise<{ config?: LlamaConfig; problems: string[] }> {
  if (!(await exists(dir))) return { problems: [`model folder ${dir} does not exist`] }
  const problems: string[] = []
  let config: LlamaConfig | undefined
  if (!(await exists(path.join(dir, CONFIG_FILE)))) {
    problems.push(`missing ${CONFIG_FILE}`)
  } else {
    try {
      const parsed = parseLlamaConfig(await readJson(path.join(dir, CONFIG_FILE)))
      if ('config' in parsed) config = parsed.config
      else problems.push(...parsed.problems.map((p) => `${CONFIG_FILE}: ${p}`))
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  if (!(await exists(path.join(dir, TOKENIZER_FILE)))) problems.push(`missing ${TOKENIZER_FILE}`)
  if (config) problems.push(...(await inspectWeights(dir, config)))
  return { config, problems }
}

/** The problems of a model folder (empty when it loads). */
export async function inspectModelFolder(dir: string): Promise<string[]> {
  return (await inspect(dir)).problems
}

/** The architecture of a model folder without loading its weights (memory planning). */
export async function readModelConfig(dir: string): Promise<LlamaConfig> {
  const { config, problems } = await inspect(dir)
  if (!config)
    throw new ModelLoadError(`cannot read the config of ${dir}:\n  ${problems.join('\n  ')}`, {
      dir,
      problems,
    })
  return config
}

/**
 * Opens a model folder; its weights as float32, or stored as `storage` when given; float32 ones
 * read straight `into` the memory it gives for them.
 */
export async function loadModel(dir: string): Promise<LoadedModel>
export async function loadModel(
  dir: string,
  storage: StorageDType,
  into?: WeightDestination,
): Promise<LoadedModel<StoredWeights>>
export async function loadModel(
  dir: string,
  storage: StorageDType = 'float32',
  into?: WeightDestination,
): Promise<LoadedModel<StoredWeights>> {
  const { config, problems } = await inspect(dir)
  let tokenizer: TextTokenizer | undefined
  let chatTemplate: ChatTemplate | null = null
  if (!problems.some((p) => p.includes(TOKENIZER_FILE))) {
    try {
      tokenizer = await TextTokenizer.load(dir)
      chatTemplate = await ChatTemplate.load(dir, tokenizer.tokenizerConfig, tokenizer.specialTokens)
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  if (problems.length > 0 || !config || !tokenizer) {
    throw new ModelLoadError(`cannot load the model in ${dir}:\n  ${problems.join('\n  ')}`, {
      dir,
      problems,
    })
  }
  const weights = await loadWeights(dir, config, storage, into)
  const stop = new Set(config.eos_token_id)
  if (await exists(path.join(dir, GENERATION_CONFIG_FILE))) {
    const gen = await readJson(path.join(dir, GENERATION_CONFIG_FILE))
    const eos = gen.eos_token_id
    for (const id of Array.isArray(eos) ? eos : [eos]) if (typeof id === 'number') stop.add(id)
  }
  if (tokenizer.eosTokenId !== null) stop.add(tokenizer.eosTokenId)
  return { dir, config, weights, tokenizer, chatTemplate, stopTokenIds: [...stop].sort((a, b) => a - b) }
}
