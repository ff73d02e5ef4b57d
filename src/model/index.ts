/** The model layer's public surface: loading, tokenizers, chat templates, graphs, the Policy, tiny models. */
export { writeFolderAtomically } from './atomic-folder.ts'
export { type Padding, packRows, scoringFeeds, type TokenRow } from './batch.ts'
export { type ChatMessage, ChatTemplate, chatMessages } from './chat-template.ts'
export {
  type LlamaConfig,
  type ModelType,
  parameterCount,
  parseLlamaConfig,
  SUPPORTED_MODEL_TYPES,
} from './config.ts'
export type { GenerateOptions, Generation } from './generate.ts'
export {
  buildPolicyStepGraph,
  buildScoringGraph,
  type ModelTensors,
  type PolicyLoss,
  type Trainable,
} from './graphs.ts'
export { buildDecodeGraph, KvCache } from './kv-cache.ts'
export { inspectModelFolder, type LoadedModel, loadModel } from './load.ts'
export type { SequenceLogps } from './logprobs.ts'
export { type Adapters, fromPeft, initAdapters, LINEAR_MODULES, type LoraSpec } from './lora.ts'
export {
  Policy,
  type PolicyOptions,
  type PolicyState,
  type PromptInput,
  type SequenceScores,
  type TrainBatch,
  type TrainStepOptions,
  type TrainStepResult,
} from './policy.ts'
export { Random } from './random.ts'
export {
  type FloatTensor,
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsDType,
  writeSafetensors,
} from './safetensors.ts'
export type { SamplingOptions } from './sampling.ts'
export { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, saveAdapters, saveFullModel } from './save.ts'
export { makeTinyModel, TINY_PRESETS, type TinyModelInfo, type TinyPreset } from './tiny.ts'
export { TextTokenizer } from './tokenizer.ts'
export { expectedWeightShapes, loadWeights, type Weights } from './weights.ts'
