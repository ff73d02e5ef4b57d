/** The SSO layer's public surface: the trainer, its hyperparameters, record formats and principles. */

export { type Hyperparameters, HyperparametersSchema, parseHyperparameters } from './hyperparameters.ts'
export { BASE_LOSS_TYPES, OBJECTIVE_NAMES, OBJECTIVE_ROLES, ROLES } from './loss-types.ts'
export { LOSSES, OBJECTIVES } from './losses.ts'
export { openModelPolicy } from './model-adapter.ts'
export type { OpenPolicy, TrainablePolicy } from './policy-port.ts'
export { DEFAULT_PRINCIPLE_SET, systemPrompt, validatePrincipleSet } from './principles.ts'
export {
  DATASET_FORMATS,
  type DatasetFormat,
  PreferencePairSchema,
  parseJsonl,
  QuerySchema,
  readDataset,
  SftPairSchema,
  SsoRecordSchema,
  validateDataset,
  writeJsonl,
} from './records.ts'
export { openModelRewardModel } from './reward-model-adapter.ts'
export { createTrainer, runTrainer } from './trainer.ts'
