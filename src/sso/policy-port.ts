/**
 * What the trainer and the evaluation need from a policy: chat generation, response scoring, training
 * steps on an objective, a frozen reference, and state that can be saved and restored. The model
 * layer's Policy is plugged in through a thin adapter (src/sso/model-adapter.ts).
 */

import type { LossHyperparameters, ObjectiveName, Role } from './loss-types.ts'

export interface ChatPrompt {
  /** System message; absent or '' for a plain query. */
  system?: string
  user: string
  /** Earlier turns as [user, assistant] pairs. */
  history?: [string, string][]
}

export interface SamplingOptions {
  maxNewTokens: number
  /** 0 = greedy. */
  temperature: number
  topP: number
  topK: number
  seed: number
}

export interface TextGenerator {
  generate(prompts: ChatPrompt[], options: SamplingOptions): Promise<string[]>
}

/** One response to score or train on in its context. */
export interface ScoredRow {
  prompt: ChatPrompt
  response: string
}

/** Per-row response log-probs: summed, mean over response tokens, and the token count. */
export interface SequenceScores {
  sum: number[]
  mean: number[]
  count: number[]
}

/**
 * One micro-batch of an objective: `rows[role][i]` is example i seen as `role`; `ref` holds the reference
 * log-probs of the objective's refRoles for the same examples.
 */
export interface ObjectiveBatch {
  rows: Partial<Record<Role, ScoredRow[]>>
  ref: Partial<Record<Role, { sum: number[]; mean: number[] }>>
}

export interface StepResult {
  /** The objective's metrics (means over the micro-batches). */
  metrics: Record<string, number>
  gradNorm: number
  /** Tokens processed (prompt and response) by the step. */
  tokens: number
}

export interface OptimizerSettings {
  lr: number
  betas: [number, number]
  eps: number
  weightDecay: number
  maxGradNorm: number
}

export interface TrainablePolicy extends TextGenerator {
  /** Log-probs of responses under the current weights (`policy`) or the frozen reference. */
  score(rows: ScoredRow[], which: 'policy' | 'reference'): Promise<SequenceScores>
  /** Makes the current weights the reference; with LoRA the adapters are merged into the base first. */
  freezeReference(): Promise<void>
  /** The reference's log-probs are all scored: full fine-tuning need not keep a copy of its weights. */
  releaseReference(): Promise<void>
  /** One optimizer step over the micro-batches (gradient accumulation) at learning rate `lr`. */
  trainStep(
    objective: ObjectiveName,
    hp: LossHyperparameters,
    microBatches: ObjectiveBatch[],
    lr: number,
  ): Promise<StepResult>
  /** Restarts the optimizer: AdamW moments and step count back to zero, the weights kept. */
  resetOptimizer(): Promise<void>
  /** A copy with its own weights and optimizer (SSO v2's generator starts from the policy). */
  fork(): Promise<TrainablePolicy>
  /** Writes weights or adapters plus optimizer state into `dir` (an empty folder). */
  save(dir: string): Promise<{ kind: 'full' | 'lora'; bytes: number }>
  /** Restores what `save` wrote. */
  load(dir: string): Promise<void>
  /** Writes the trained model in the layout users load (full weights or PEFT adapters). */
  exportModel(dir: string): Promise<void>
  readonly device: string
  /** Bytes generation moved between host and device so far, and the tokens it generated (accelerators only). */
  generationTransfers?(): GenerationTransfers
  dispose(): Promise<void>
}

export interface GenerationTransfers {
  hostToDevice: number
  deviceToHost: number
  tokens: number
}

/** How a job opens a trainable model (policy or reward model): the folder, how it is trained, the optimizer. */
export interface OpenModelOptions {
  modelDir: string
  device: 'auto' | 'cpu' | 'webgpu' | 'cuda'
  finetuning: 'full' | 'lora'
  lora: { rank: number; alpha: number; targets: string[] }
  optimizer: OptimizerSettings
  maxPromptTokens: number
  seed: number
  /** Single-threaded ops (a fixed summation order in reductions), at some speed cost. */
  deterministic?: boolean
  /** Recompute each decoder layer in the backward pass (gradient checkpointing). */
  checkpoint?: boolean
  /** Storage of the AdamW moments. */
  optimizerStateDtype?: 'float32' | 'bfloat16'
  /** Storage of the gradients the host optimizer reads (float16: with a scale per tensor). */
  gradientDtype?: 'float32' | 'float16'
  /** Storage of LoRA's frozen base. */
  weightsDtype?: 'float32' | 'bfloat16' | 'float16'
  /** float16: the policy scores and trains in mixed precision (WebGPU only). */
  precision?: 'float32' | 'float16'
}

/** Opens a policy for a job. */
export type OpenPolicy = (options: OpenModelOptions) => Promise<TrainablePolicy>
