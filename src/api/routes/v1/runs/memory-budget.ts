/**
 * Refuses at creation a run that cannot fit a worker's memory budget even with micro-batches of one
 * and gradient checkpointing: the estimate needs only the model's config, so the client hears it now
 * rather than from a failed run later.
 */
import { parseLlamaConfig } from '../../../../model/config.ts'
import { tinyConfigJson } from '../../../../model/tiny.ts'
import type { ModelDto } from '../../../../schemas/models.ts'
import {
  effectiveHyperparameters,
  type HyperparameterSettings,
  type Hyperparameters,
} from '../../../../sso/hyperparameters.ts'
import { planRunMemory } from '../../../../sso/memory-plan.ts'
import type { TrainingMethod } from '../../../../sso/trainer-interface.ts'

/** The built-in model's architecture (its token ids do not change its size). */
const tinyConfig = () => tinyConfigJson('tiny', { '<|endoftext|>': 0, '<|im_end|>': 1 })

/**
 * Verdicts by (config, method, hyperparameters, budget): the estimate builds the run's graphs, about
 * a second for a 0.5B model, and scripts post many runs of the same model and settings.
 */
const verdicts = new Map<string, Error | null>()
const MAX_VERDICTS = 256

export function assertFitsMemory(
  model: ModelDto,
  method: TrainingMethod,
  settings: HyperparameterSettings,
  budgetBytes: number,
): void {
  if (method === 'rm') return
  const config = model.kind === 'builtin_tiny' ? tinyConfig() : model.config
  const hp = effectiveHyperparameters(method, settings)
  const key = JSON.stringify([config, method, hp, budgetBytes])
  let verdict = verdicts.get(key)
  if (verdict === undefined) {
    verdict = planVerdict(config, method, hp, budgetBytes)
    if (verdicts.size >= MAX_VERDICTS) verdicts.delete(verdicts.keys().next().value!)
    verdicts.set(key, verdict)
  }
  if (verdict) throw verdict
}

/** null when the run fits (or the loader rejects the config: the run then fails with its message). */
function planVerdict(
  config: unknown,
  method: Exclude<TrainingMethod, 'rm'>,
  hp: Hyperparameters,
  budgetBytes: number,
): Error | null {
  const parsed = parseLlamaConfig(config)
  if (!('config' in parsed)) return null
  try {
    planRunMemory(parsed.config, method, hp, budgetBytes)
    return null
  } catch (e) {
    return e as Error
  }
}
