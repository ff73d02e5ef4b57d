/**
 * Refuses at creation a run that cannot fit a worker's memory budget even with micro-batches of one
 * and gradient checkpointing: the estimate needs only the model's config, so the client hears it now
 * rather than from a failed run later.
 */
import { parseLlamaConfig } from '../../../../model/config.ts'
import { tinyConfigJson } from '../../../../model/tiny.ts'
import type { ModelDto } from '../../../../schemas/models.ts'
import { type HyperparameterSettings, resolveHyperparameters } from '../../../../sso/hyperparameters.ts'
import { planRunMemory } from '../../../../sso/memory-plan.ts'
import type { TrainingMethod } from '../../../../sso/trainer-interface.ts'

/** The built-in model's architecture (its token ids do not change its size). */
const tinyConfig = () => tinyConfigJson('tiny', { '<|endoftext|>': 0, '<|im_end|>': 1 })

export function assertFitsMemory(
  model: ModelDto,
  method: TrainingMethod,
  settings: HyperparameterSettings,
  budgetBytes: number,
): void {
  if (method === 'rm') return
  const parsed = parseLlamaConfig(model.kind === 'builtin_tiny' ? tinyConfig() : model.config)
  // a config the loader rejects fails the run with the loader's own message
  if (!('config' in parsed)) return
  planRunMemory(parsed.config, method, resolveHyperparameters(method, settings), budgetBytes)
}
