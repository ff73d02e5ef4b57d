/** The model layer's public surface: loading, tokenizers, chat templates, tiny models. */
export { writeFolderAtomically } from './atomic-folder.ts'
export { type ChatMessage, ChatTemplate, chatMessages } from './chat-template.ts'
export {
  type LlamaConfig,
  type ModelType,
  parameterCount,
  parseLlamaConfig,
  SUPPORTED_MODEL_TYPES,
} from './config.ts'
export { inspectModelFolder, type LoadedModel, loadModel } from './load.ts'
export { Random } from './random.ts'
export {
  type FloatTensor,
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsDType,
  writeSafetensors,
} from './safetensors.ts'
export { makeTinyModel, TINY_PRESETS, type TinyModelInfo, type TinyPreset } from './tiny.ts'
export { TextTokenizer } from './tokenizer.ts'
export { expectedWeightShapes, loadWeights, type Weights } from './weights.ts'
