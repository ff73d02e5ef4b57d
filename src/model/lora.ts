/**
 * LoRA adapters as PEFT defines them: for a target Linear W (out x in), y = W x + (alpha / r) B A x
 * with A (r x in) initialised kaiming-uniform (a = sqrt(5)) and B (out x r) at zero, so training
 * starts from the base model. Keys follow PEFT: `<module>.lora_A.weight`, saved under
 * `base_model.model.<module>.lora_A.weight`.
 */
import { ValidationError } from '../errors.ts'
import type { LlamaConfig } from './config.ts'
import { Random, uniformArray } from './random.ts'
import { decodeHalf, encodeHalf, type FloatTensor, isHalf } from './safetensors.ts'
import { expectedWeightShapes, type StoredWeights } from './weights.ts'

export interface LoraSpec {
  rank: number
  alpha: number
  /** Module names as PEFT's target_modules: 'q_proj', 'v_proj', ... (or full module paths). */
  targets: readonly string[]
}

/** Adapter tensors by internal key (`model.layers.0.self_attn.q_proj.lora_A.weight`). */
export type Adapters = Map<string, FloatTensor>

export const PEFT_PREFIX = 'base_model.model.'
export const LINEAR_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const

export const loraAKey = (module: string): string => `${module}.lora_A.weight`
export const loraBKey = (module: string): string => `${module}.lora_B.weight`

/** alpha / r: PEFT's scaling without rsLoRA. */
export function loraScale(spec: LoraSpec): number {
  return spec.alpha / spec.rank
}

/** Module paths the spec targets, with their Linear's [out, in], in weight order. */
export function loraModules(cfg: LlamaConfig, spec: LoraSpec): { module: string; out: number; in: number }[] {
  if (!(Number.isInteger(spec.rank) && spec.rank > 0))
    throw new ValidationError(`LoRA rank must be a positive integer, got ${spec.rank}`)
  const unknown = spec.targets.filter((t) => !LINEAR_MODULES.includes(t as never) && !t.includes('.'))
  if (unknown.length) {
    throw new ValidationError(
      `unknown LoRA target modules: ${unknown.join(', ')} (known: ${LINEAR_MODULES.join(', ')})`,
    )
  }
  const out: { module: string; out: number; in: number }[] = []
  for (const [key, shape] of expectedWeightShapes(cfg)) {
    if (
      !key.endsWith('.weight') ||
      shape.length !== 2 ||
      key.endsWith('embed_tokens.weight') ||
      key === 'lm_head.weight'
    )
      continue
    const module = key.slice(0, -'.weight'.length)
    if (spec.targets.some((t) => module === t || module.endsWith(`.${t}`)))
      out.push({ module, out: shape[0], in: shape[1] })
  }
  if (out.length === 0) throw new ValidationError(`LoRA targets [${spec.targets.join(', ')}] match no module`)
  return out
}

/** Fresh adapters, PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform, a = sqrt(5)), B = 0. */
export function initAdapters(cfg: LlamaConfig, spec: LoraSpec, seed: number): Adapters {
  const rng = new Random(seed)
  const adapters: Adapters = new Map()
  for (const m of loraModules(cfg, spec)) {
    adapters.set(loraAKey(m.module), {
      shape: [spec.rank, m.in],
      data: uniformArray(rng, spec.rank * m.in, 1 / Math.sqrt(m.in)),
    })
    adapters.set(loraBKey(m.module), { shape: [m.out, spec.rank], data: new Float32Array(m.out * spec.rank) })
  }
  return adapters
}

/**
 * W += sign * scale * B A for every adapted module, in place (merge: +1, unmerge: -1). A weight
 * stored in a half type is updated row by row in float32, then rounded back.
 */
export function applyAdapters(
  weights: StoredWeights,
  adapters: Adapters,
  spec: LoraSpec,
  sign: 1 | -1,
): void {
  const scale = sign * loraScale(spec)
  for (const key of adapters.keys()) {
    if (!key.endsWith('.lora_A.weight')) continue
    const module = key.slice(0, -'.lora_A.weight'.length)
    const a = adapters.get(key)!
    const b = adapters.get(loraBKey(module))!
    const w = weights.get(`${module}.weight`)!
    const [out, inp] = w.shape
    const r = a.shape[0]
    const scratch = new Float32Array(inp)
    for (let o = 0; o < out; o++) {
      const stored = w.data.subarray(o * inp, (o + 1) * inp)
      const row = isHalf(w) ? decodeHalf(w.dtype, stored as Uint16Array, scratch) : (stored as Float32Array)
      for (let k = 0; k < r; k++) {
        const bk = b.data[o * r + k] * scale
        if (bk === 0) continue
        const arow = k * inp
        for (let i = 0; i < inp; i++) row[i] += bk * a.data[arow + i]
      }
      if (isHalf(w)) encodeHalf(w.dtype, row, stored as Uint16Array)
    }
  }
}

/** The `adapter_config.json` PEFT writes for these adapters. */
export function peftAdapterConfig(
  cfg: LlamaConfig,
  spec: LoraSpec,
  baseModel: string,
): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: spec.rank,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    target_modules: [...new Set(loraModules(cfg, spec).map((m) => m.module.split('.').pop()!))].sort(),
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    use_rslora: false,
    use_dora: false,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  }
}

/** Adapter tensors under PEFT's saved keys. */
export function toPeftKeys(adapters: Adapters): Map<string, FloatTensor> {
  return new Map([...adapters].map(([k, t]) => [PEFT_PREFIX + k, t]))
}

/** Spec and adapters from PEFT's adapter_config.json and saved tensors. */
export function fromPeft(
  config: Record<string, unknown>,
  tensors: Map<string, FloatTensor>,
): { spec: LoraSpec; adapters: Adapters } {
  const targets = config.target_modules
  const spec: LoraSpec = {
    rank: Number(config.r),
    alpha: Number(config.lora_alpha),
    targets: Array.isArray(targets) ? (targets as string[]) : [String(targets)],
  }
  const adapters: Adapters = new Map()
  for (const [k, t] of tensors) adapters.set(k.startsWith(PEFT_PREFIX) ? k.slice(PEFT_PREFIX.length) : k, t)
  return { spec, adapters }
}
