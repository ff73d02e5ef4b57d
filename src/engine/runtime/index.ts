export { float16Unsupported } from './float16-support.ts'
export {
  elementCount,
  type HostDataMap,
  type HostDType,
  type HostTensor,
  hostTensor,
  scalarHost,
  zerosHost,
} from './host-tensor.ts'
export { type DecoderShape, decoderTrainFlopsPerToken, flopsUtilisation, matMulFlops } from './mfu.ts'
export {
  misplacedNodes,
  type NodePlacement,
  nodePlacement,
  type PlacedNode,
  parsePlacementLog,
} from './placement.ts'
export { missingMallocSettings, TRAINING_MALLOC_ENV, trainingProcessEnv } from './process-env.ts'
export {
  availableProviders,
  chooseProvider,
  PROVIDERS,
  type Provider,
  type ProviderRequest,
  type ProviderStatus,
  providerStatuses,
  resolveProvider,
} from './providers.ts'
export {
  createGraphSession,
  GraphSession,
  type GraphSessionOptions,
  type IoSpec,
  setSessionDefaults,
} from './session.ts'
export { DeviceState } from './state.ts'
export {
  serveThread,
  type ThreadContext,
  type ThreadHandlers,
  ThreadRunner,
  type ThreadRunnerOptions,
} from './thread-runner.ts'
export {
  noTransfers,
  type TransferCounts,
  transfersBetween,
  transferTotals,
} from './transfers.ts'
