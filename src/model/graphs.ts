/**
 * Graph builders over one model: which tensors are frozen initializers and which are fed inputs,
 * and the scoring graph (sequence log-probs, optionally logits) the policy, the reference and the
 * training step share.
 */
import {
  type BuiltGradStep,
  type BuiltMicroStep,
  buildGradStep,
  buildMicroStep,
  type Dim,
  type GradientDType,
  Graph,
  type Tensor,
  type TrainableParam,
} from '../engine/index.ts'
import { declareDecoderInputs, declareTargets } from './batch.ts'
import type { LlamaConfig } from './config.ts'
import type { ModelContext } from './layers.ts'
import { llamaModel, lmHead } from './llama.ts'
import { reduceSequences, type SequenceLogps, targetLogps } from './logprobs.ts'
import { type Adapters, type LoraSpec, loraScale } from './lora.ts'
import { halfDecoderInputs, halfSource, type Precision, toFloat32 } from './precision.ts'
import { bindWeights, type FloatDType, type FrozenWeights, type WeightSource } from './weight-source.ts'
import type { StoredWeights } from './weights.ts'

/** A model's tensors: base weights and, with LoRA, the adapters and their spec. */
export interface ModelTensors {
  cfg: LlamaConfig
  weights: StoredWeights
  lora?: { spec: LoraSpec; adapters: Adapters }
}

/** What a graph feeds each step: every weight (full fine-tuning), only the adapters, or nothing. */
export type Trainable = 'all' | 'adapters' | 'none'

export interface BindOptions {
  dtype?: FloatDType
  trainable: Trainable
  /** Frozen weights as initializers (the default) or fed as inputs (see bindWeights). */
  frozen?: FrozenWeights
  /** LM head in this many vocabulary chunks; by default by vocabulary size (defaultVocabChunks). */
  vocabChunks?: number
  /** false for graphs that run on WebGPU, which has no com.microsoft FusedMatMul kernel. */
  fusedMatMul?: boolean
  /** Gradient checkpointing: the backward recomputes each decoder layer from its input. */
  checkpoint?: boolean
  /** float16: the decoder computes in float16 from casts of the weights (precision.ts). */
  precision?: Precision
}

/** Binds base weights and adapters into g; returns the model context and the fed tensors by key. */
export function bindModel(
  g: Graph,
  model: ModelTensors,
  opts: BindOptions,
): { ctx: ModelContext; params: Map<string, Tensor> } {
  const dtype = opts.dtype ?? 'float32'
  const base = bindWeights(g, model.weights, {
    dtype,
    trainable: () => opts.trainable === 'all',
    frozen: opts.frozen,
  })
  const compute = (source: WeightSource) => (opts.precision === 'float16' ? halfSource(g, source) : source)
  const ctx: ModelContext = { g, cfg: model.cfg, w: compute(base.source), checkpoint: opts.checkpoint }
  const params = new Map(base.inputs)
  if (model.lora) {
    const adapters = bindWeights(g, model.lora.adapters, {
      dtype,
      trainable: () => opts.trainable !== 'none',
      frozen: opts.frozen,
    })
    ctx.lora = { source: compute(adapters.source), scale: loraScale(model.lora.spec) }
    for (const [k, t] of adapters.inputs) params.set(k, t)
  }
  return { ctx, params }
}

export interface ScoringGraph {
  graph: Graph
  ctx: ModelContext
  params: Map<string, Tensor>
  logps: SequenceLogps
}

/** Forward pass to response log-probs; outputs `logps.sum`, `logps.mean`, `logps.count` (and `logits`). */
export function buildScoringGraph(
  model: ModelTensors,
  opts: BindOptions & { sequences?: Dim; logits?: boolean; outputs?: boolean; name?: string },
): ScoringGraph {
  const g = new Graph({ name: opts.name ?? 'scoring', fusedMatMul: opts.fusedMatMul })
  const dtype = opts.dtype ?? 'float32'
  const { ctx, params } = bindModel(g, model, opts)
  const declared = declareDecoderInputs(g, model.cfg, dtype, { rows: 'batch', seq: 'seq', keys: 'seq' })
  const inputs = opts.precision === 'float16' ? halfDecoderInputs(g, declared) : declared
  const targets = declareTargets(g, dtype, opts.sequences)
  const { hidden } = llamaModel(ctx, inputs)
  const logps = reduceSequences(g, targetLogps(ctx, hidden, targets, opts.vocabChunks), targets.sequences)
  if (opts.outputs !== false) {
    g.output(logps.sum, 'logps.sum')
    g.output(logps.mean, 'logps.mean')
    g.output(logps.count, 'logps.count')
    if (opts.logits) g.output(toFloat32(g, lmHead(ctx, hidden)), 'logits')
  }
  return { graph: g, ctx, params, logps }
}

/** An objective on top of the response log-probs: a scalar loss and optional scalar metrics. */
export interface PolicyLoss {
  /** Step graphs are cached by this name. */
  name: string
  /** Rows of every batch, when the loss slices rows by role (a static batch axis); dynamic otherwise. */
  rows?: number
  build(g: Graph, logps: SequenceLogps): { loss: Tensor; metrics?: Record<string, Tensor> }
}

export type StepGraphOptions = BindOptions & { trainable: Exclude<Trainable, 'none'>; loss: PolicyLoss }

/** A graph holding forward pass and loss, and what a step differentiates in it. */
export interface PolicyObjective {
  g: Graph
  spec: { loss: Tensor; params: TrainableParam[]; metrics?: Record<string, Tensor> }
}

/** The scoring graph with the loss on top, and the trainable tensors it differentiates. */
export function buildPolicyObjective(model: ModelTensors, opts: StepGraphOptions): PolicyObjective {
  const scoring = buildScoringGraph(model, {
    trainable: opts.trainable,
    frozen: opts.frozen,
    dtype: opts.dtype,
    vocabChunks: opts.vocabChunks,
    fusedMatMul: opts.fusedMatMul,
    checkpoint: opts.checkpoint,
    precision: opts.precision,
    sequences: opts.loss.rows,
    outputs: false,
    name: `step.${opts.loss.name}`,
  })
  const { loss, metrics } = opts.loss.build(scoring.graph, scoring.logps)
  // Weight decay applies to matrices only (not to norms and biases), as in common Llama recipes.
  const params = [...scoring.params].map(([name, tensor]) => ({
    name,
    tensor,
    decay: tensor.shape.length > 1,
  }))
  return { g: scoring.graph, spec: { loss, params, metrics } }
}

/**
 * Forward, loss and backward of one training step (full fine-tuning: every weight is an input; LoRA:
 * the frozen base is initializers, the adapters inputs). Outputs loss, metrics and `grad.<key>`
 * for every trainable tensor (float16 ones with their `grad_scale.<key>`); the optimizer update runs
 * on the host (HostAdamW).
 */
export function buildPolicyStepGraph(
  model: ModelTensors,
  opts: StepGraphOptions & { gradientDtype?: GradientDType },
): BuiltGradStep {
  const { g, spec } = buildPolicyObjective(model, opts)
  return buildGradStep(g, { ...spec, gradientDtype: opts.gradientDtype })
}

/**
 * The same forward, loss and backward, adding the gradients into device-resident accumulators
 * (gradient accumulation, see buildMicroStep): for providers that keep the optimizer on the device,
 * where the in-graph AdamW (buildUpdateStep) then applies them.
 */
export function buildPolicyMicroStep(model: ModelTensors, opts: StepGraphOptions): BuiltMicroStep {
  const { g, spec } = buildPolicyObjective(model, opts)
  return buildMicroStep(g, { ...spec, lossScale: opts.precision === 'float16' })
}
