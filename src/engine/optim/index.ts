export {
  ACCUMULATE_INPUT,
  accumulatorName,
  type BuiltMicroStep,
  buildMicroStep,
  buildUpdateStep,
  type MicroStepSpec,
  type UpdateSpec,
} from './accumulate.ts'
export { type AdamWConfig, adamW } from './adamw.ts'
export { clipByGlobalNorm, clipCoefficient, globalNorm } from './clip.ts'
export { HostAdamW, type HostAdamWConfig } from './host-adamw.ts'
export { type LossScaleConfig, LossScaler } from './loss-scale.ts'
export {
  nextName,
  type Optimizer,
  type OptimizerGraph,
  type ParamDType,
  type StepScalars,
  slotName,
  type TrainableParam,
} from './optimizer.ts'
export { type LrSchedule, lrAt, validateSchedule, type WarmUp } from './schedule.ts'
export { type SgdConfig, sgdMomentum } from './sgd.ts'
export { WEBGPU_STACK } from './stacks.ts'
export {
  createStepRunner,
  type StepInput,
  type StepPlan,
  type StepResult,
  type StepRunner,
  type StepSessionOptions,
} from './step-runner.ts'
export {
  type BuiltGradStep,
  type BuiltStep,
  buildGradStep,
  buildTrainStep,
  type GradientDType,
  type GradStepSpec,
  gradName,
  gradScaleOf,
  isGradientOutput,
  type ParamInfo,
  STEP_INPUTS,
  STEP_OUTPUTS,
  type StepSpec,
} from './train-step.ts'
