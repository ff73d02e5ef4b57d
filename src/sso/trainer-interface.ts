/**
 * The contract between a trainer (src/sso) and whoever runs it: the worker (src/worker) or the
 * local CLI (`sso train`). Config in; metrics, events, samples and checkpoints out through
 * callbacks; control polled between steps and during generation.
 */

export const TRAINING_METHODS = ['sso', 'sso_v2', 'pbaa', 'dpo', 'ipo', 'sft', 'rm'] as const
export type TrainingMethod = (typeof TRAINING_METHODS)[number]

export const TRAINER_PHASES = [
  'loading',
  'generating',
  'scoring',
  'training',
  'evaluating',
  'checkpointing',
] as const
export type TrainerPhase = (typeof TRAINER_PHASES)[number]

export type Device = 'auto' | 'cpu' | 'webgpu' | 'cuda'

/** A principle: one feature with its good and contrasting bad text. */
export interface Principle {
  feature: string
  good: string
  bad: string
}

export interface PrincipleSetSpec {
  name: string
  principles: Principle[]
  /** Appended with `concisionProbability` to each query's selection when present. */
  concision?: Principle
}

export interface TrainerJob {
  runId: string
  method: TrainingMethod
  /** Local Hugging Face folder of the starting model. */
  modelDir: string
  principleSet?: PrincipleSetSpec
  /** JSONL files: queries for online methods, records/pairs for offline ones. */
  datasetPaths: string[]
  /** Validated hyperparameters (schema in src/schemas/hyperparameters.ts). */
  hyperparameters: Record<string, unknown>
  device: Device
  seed: number
  /** Folder owned by this run: checkpoints, generated samples. */
  outputDir: string
  /** Checkpoint folder to resume from (written by a previous attempt of this run). */
  resumeFrom?: string
  /** Memory this run may use (bytes): `auto` memory settings are planned to fit it, and a run that cannot fits fails. */
  memoryBudgetBytes?: number
}

export interface MetricsBatch {
  step: number
  iteration?: number
  values: Record<string, number>
}

export interface TrainerEvent {
  type: 'phase' | 'progress' | 'info' | 'warning' | 'iteration_end'
  phase?: TrainerPhase
  message: string
  data?: Record<string, unknown>
}

export interface CheckpointInfo {
  step: number
  iteration: number
  /** Folder holding weights or adapters, optimizer state and trainer state, written atomically. */
  dir: string
  kind: 'full' | 'lora'
  bytes: number
}

export type ControlSignal = 'continue' | 'cancel' | 'pause'

export interface TrainerCallbacks {
  onMetrics(batch: MetricsBatch): void
  onEvent(event: TrainerEvent): void
  /** Called after a checkpoint folder is complete on disk. */
  onCheckpoint(info: CheckpointInfo): void | Promise<void>
  /** Generated records of one iteration (the record format of the method). */
  onSamples?(iteration: number, records: Record<string, unknown>[]): void
  /** Polled between steps and between generated batches. On cancel/pause the trainer checkpoints and returns. */
  control(): ControlSignal
  /**
   * True while whoever takes the callbacks cannot keep what they carry (its database is down): a
   * trainer that can block waits at its next control() until this is false again or the control
   * changes (back-pressure). Absent: never held.
   */
  held?(): boolean
}

export interface TrainerResult {
  status: 'succeeded' | 'cancelled' | 'paused'
  finalStep: number
  lastCheckpoint?: CheckpointInfo
  device: string
}

export type RunTrainer = (job: TrainerJob, callbacks: TrainerCallbacks) => Promise<TrainerResult>
