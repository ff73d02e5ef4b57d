/**
 * The JSON file of `sso train`: a run described without the service. Relative paths are resolved
 * against the file's folder, so a config travels with its data.
 */

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { defaultWorkerMemoryBytes } from '../config.ts'
import { ValidationError } from '../errors.ts'
import { DEFAULT_PRINCIPLE_SET, validatePrincipleSet } from '../sso/principles.ts'
import { type PrincipleSetSpec, TRAINING_METHODS, type TrainerJob } from '../sso/trainer-interface.ts'

const PrincipleSchema = Type.Object({ feature: Type.String(), good: Type.String(), bad: Type.String() })

export const TrainConfigSchema = Type.Object(
  {
    method: Type.Enum(TRAINING_METHODS, { default: 'sso' }),
    /** Hugging Face model folder (e.g. one made by `sso make-tiny-model`). */
    model: Type.String({ minLength: 1 }),
    /** Inline set or a JSON file with { name, principles, concision? }; the built-in set when absent. */
    principle_set: Type.Optional(
      Type.Union([
        Type.String({ minLength: 1 }),
        Type.Object({
          name: Type.String({ minLength: 1 }),
          principles: Type.Array(PrincipleSchema, { minItems: 1 }),
          concision: Type.Optional(PrincipleSchema),
        }),
      ]),
    ),
    /** JSONL files: queries for online methods, pairs or records for offline ones. */
    datasets: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    hyperparameters: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    device: Type.Enum(['auto', 'cpu', 'webgpu', 'cuda'], { default: 'auto' }),
    seed: Type.Integer({ minimum: 0, default: 0 }),
    output_dir: Type.String({ minLength: 1 }),
    resume_from: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)
export type TrainConfig = Static<typeof TrainConfigSchema>

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ValidationError(`cannot read ${what} '${file}': ${(e as Error).message}`, { file })
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new ValidationError(`${what} '${file}' is not valid JSON: ${(e as Error).message}`, { file })
  }
}

/** Reads, validates (listing every problem) and resolves a train config into a trainer job. */
export async function loadTrainJob(
  file: string,
  overrides: { outputDir?: string; device?: string; hyperparameters?: Record<string, unknown> } = {},
): Promise<TrainerJob> {
  const raw = (await readJson(file, 'train config')) as Record<string, unknown>
  const value = Value.Default(TrainConfigSchema, structuredClone(raw))
  const errors = [
    ...new Set(Value.Errors(TrainConfigSchema, value).map((e) => `${e.instancePath || '/'} ${e.message}`)),
  ]
  if (errors.length > 0)
    throw new ValidationError(`invalid train config '${file}': ${errors.join('; ')}`, { errors })
  const config = value as TrainConfig
  const base = path.dirname(path.resolve(file))
  const at = (p: string) => path.resolve(base, p)
  let principleSet: PrincipleSetSpec = DEFAULT_PRINCIPLE_SET
  if (typeof config.principle_set === 'string') {
    principleSet = (await readJson(at(config.principle_set), 'principle set')) as PrincipleSetSpec
  } else if (config.principle_set) {
    principleSet = config.principle_set
  }
  return {
    runId: `local-${path.basename(overrides.outputDir ?? config.output_dir)}`,
    method: config.method,
    modelDir: at(config.model),
    principleSet: validatePrincipleSet(principleSet),
    datasetPaths: config.datasets.map(at),
    hyperparameters: { ...config.hyperparameters, ...overrides.hyperparameters },
    device: (overrides.device ?? config.device) as TrainerJob['device'],
    seed: config.seed,
    outputDir: overrides.outputDir ? path.resolve(overrides.outputDir) : at(config.output_dir),
    resumeFrom: config.resume_from ? at(config.resume_from) : undefined,
    // `auto` memory settings fit what a worker on this machine would have by default
    memoryBudgetBytes: defaultWorkerMemoryBytes(),
  }
}
