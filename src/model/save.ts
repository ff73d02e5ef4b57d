/**
 * Saving in the layouts users already load, atomically (temp folder, fsync, rename): full weights
 * as `model.safetensors` + `config.json` + the tokenizer files, or LoRA adapters as PEFT writes
 * them (`adapter_model.safetensors` + `adapter_config.json`).
 */
import { copyFile } from 'node:fs/promises'
import path from 'node:path'
import { writeFolderAtomically, writeJson } from './atomic-folder.ts'
import type { LlamaConfig } from './config.ts'
import { type Adapters, type LoraSpec, peftAdapterConfig, toPeftKeys } from './lora.ts'
import { type SafetensorsDType, writeSafetensors } from './safetensors.ts'
import { exists, SINGLE_FILE, type StoredWeights } from './weights.ts'

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors'
export const ADAPTER_CONFIG_FILE = 'adapter_config.json'

/** Files of the source folder that travel with saved full weights. */
const COMPANION_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
]

/** Writes full weights with the source folder's config and tokenizer files. Returns bytes written. */
export async function saveFullModel(
  dir: string,
  source: { dir: string; weights: StoredWeights },
  opts: { dtype?: SafetensorsDType } = {},
): Promise<number> {
  return writeFolderAtomically(dir, async (tmp) => {
    for (const file of COMPANION_FILES) {
      if (await exists(path.join(source.dir, file)))
        await copyFile(path.join(source.dir, file), path.join(tmp, file))
    }
    await writeSafetensors(path.join(tmp, SINGLE_FILE), source.weights, {
      dtype: opts.dtype,
      metadata: { format: 'pt' },
    })
  })
}

/** Writes LoRA adapters as PEFT does. `baseModel` is recorded as base_model_name_or_path. */
export async function saveAdapters(
  dir: string,
  cfg: LlamaConfig,
  lora: { spec: LoraSpec; adapters: Adapters },
  baseModel: string,
): Promise<number> {
  return writeFolderAtomically(dir, async (tmp) => {
    await writeJson(path.join(tmp, ADAPTER_CONFIG_FILE), peftAdapterConfig(cfg, lora.spec, baseModel))
    await writeSafetensors(path.join(tmp, ADAPTER_WEIGHTS_FILE), toPeftKeys(lora.adapters), {
      metadata: { format: 'pt' },
    })
  })
}
