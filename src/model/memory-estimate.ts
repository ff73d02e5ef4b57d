/**
 * How much memory a policy needs before it is loaded: weights, optimizer state and the activation
 * peaks of the graphs it runs, from the model's config alone. Activations are not guessed per
 * architecture: the very graphs the policy would run are built over shape-only weights and walked
 * for their live-value peak (Graph.peakIntermediateBytes); onnxruntime's allocator then holds more
 * than that peak, by the factors below, measured on this engine (test/model/memory-estimate.test.ts
 * checks the estimate against measured peak RSS).
 */
import { type GradientDType, neg, reduceMean, softplus } from '../engine/index.ts'
import { defaultVocabChunks } from './chunked-logps.ts'
import type { LlamaConfig } from './config.ts'
import { parameterCount } from './config.ts'
import { buildPolicyStepGraph, buildScoringGraph, type ModelTensors, type PolicyLoss } from './graphs.ts'
import { buildDecodeGraph } from './kv-cache.ts'
import { initAdapters, type LoraSpec } from './lora.ts'
import type { StorageDType } from './safetensors.ts'
import type { StoredWeights } from './weights.ts'
import { expectedWeightShapes } from './weights.ts'

/**
 * The process before any session: Node, onnxruntime and the tokenizer (measured: a 44M model's
 * LoRA policy loaded at 274 MB peak with 167 MB of weights).
 */
const FIXED_BYTES = 110 * 2 ** 20
/** What each onnxruntime session holds besides its values: kernels, plans, the graph itself. */
const SESSION_BYTES = 40 * 2 ** 20
/**
 * onnxruntime's CPU arena holds more than the live-value peak (walked in the executor's own order,
 * Graph.peakIntermediateBytes with order 'onnxruntime'): its blocks are carved and reused by size.
 * Measured with the memory pattern off (session.ts) on the shapes of
 * test/model/memory-estimate.test.ts and the Qwen2.5-0.5B shape (bench/scale.ts): scoring 1.2 times
 * the walked peak, a training step 1.1 times, but a checkpointed step with the chunked LM head
 * (vocabularies above 32k) or training every weight 1.6 to 2 times: its recomputed segments and head
 * chunks are carved from blocks of other sizes than the forward's (hidden 256, 4 layers, full
 * fine-tuning, 4 × 192: a walked peak of 101 MB held about 170 MB).
 */
const SCORING_ARENA_FACTOR = 1.2
const STEP_ARENA_FACTOR = 1.15
const MIXED_BLOCKS_STEP_ARENA_FACTOR = 1.7

export type OptimizerStateDtype = 'float32' | 'bfloat16'

export interface PolicyMemoryShape {
  /** Training sequences of one micro-batch (examples times the objective's roles). */
  trainRows: number
  /**
   * A micro-batch that may pack as prompt trees (batch.ts): this many rows, each a prompt and at most
   * `branches` responses. packRows picks trees or one row per sequence by the actual lengths, so the
   * step counts the larger of the two at the longest. One row per sequence when absent.
   */
  trainTrees?: { rows: number; branches: number }
  /** Rows of one scoring or generation batch. */
  batchRows: number
  /** Longest token row: prompt plus response. */
  seq: number
  /** Longest prompt (prefill of generation); the rest of `seq` is the longest response. */
  promptTokens: number
  checkpoint: boolean
  /** More than one micro-batch per step: the later ones bring their gradients back as host copies. */
  accumulates?: boolean
}

export interface PolicyMemoryOptions {
  lora?: LoraSpec
  optimizerStateDtype?: OptimizerStateDtype
  /** Storage of the gradients the host optimizer reads, and of the step graph's gradient outputs. */
  gradientDtype?: GradientDType
  /** Storage of LoRA's frozen base (float32 by default). */
  weightsDtype?: StorageDType
  vocabChunks?: number
}

export interface MemoryEstimate {
  /** Peak resident bytes. */
  bytes: number
  /** Where they go, in bytes. */
  parts: Record<string, number>
}

const F32 = 4
const BYTES: Readonly<Record<StorageDType, number>> = { float32: F32, bfloat16: 2, float16: 2 }

/** Shape-only weights: enough to build graphs whose weights are fed as inputs (half ones upcast inside). */
function shapeOnlyWeights(cfg: LlamaConfig, dtype: StorageDType): StoredWeights {
  const weights: StoredWeights = new Map()
  for (const [key, shape] of expectedWeightShapes(cfg))
    weights.set(
      key,
      dtype === 'float32' ? { shape, data: new Float32Array(0) } : { shape, dtype, data: new Uint16Array(0) },
    )
  return weights
}

/**
 * Peak bytes of one policy (one model's weights, its optimizer and its sessions): on the CPU, where
 * it holds the sessions of one workload at a time (generation, scoring or training), the largest.
 */
export function estimatePolicyMemory(
  cfg: LlamaConfig,
  shape: PolicyMemoryShape,
  opts: PolicyMemoryOptions = {},
): MemoryEstimate {
  const params = parameterCount(cfg)
  const lora = opts.lora ? { spec: opts.lora, adapters: initAdapters(cfg, opts.lora, 0) } : undefined
  const frozenDtype = opts.weightsDtype ?? 'float32'
  // LoRA's base is frozen; full fine-tuning trains float32 weights and scores its reference with
  // them before the first step (scoreReference releases it), so no copy of the weights is held
  const model: ModelTensors = { cfg, weights: shapeOnlyWeights(cfg, lora ? frozenDtype : 'float32'), lora }
  const trainable = lora ? [...lora.adapters.values()].reduce((n, t) => n + t.data.length, 0) : params
  const bind = {
    trainable: lora ? ('adapters' as const) : ('all' as const),
    frozen: 'inputs' as const,
    vocabChunks: opts.vocabChunks,
    checkpoint: shape.checkpoint,
  }
  // a loss whose gradient reads the forward's log-probs, as every objective's does (DPO-like): one
  // that does not lets onnxruntime's order run the backward's head ahead of the forward
  const loss: PolicyLoss = {
    name: 'estimate',
    rows: shape.trainRows,
    build: (g, logps) => ({ loss: reduceMean(g, softplus(g, neg(g, logps.mean))) }),
  }
  const gradientDtype = opts.gradientDtype ?? 'float32'
  const step = buildPolicyStepGraph(model, { ...bind, loss, gradientDtype }).graph
  const scoring = buildScoringGraph(model, bind).graph
  const decode = buildDecodeGraph(model, { ...bind, trainable: 'none' })
  // the LM head runs at response tokens only: at most seq − promptTokens of each row
  const responseTokens = Math.max(1, shape.seq - shape.promptTokens)
  // the graphs' dimensions for `batch` rows of `seq` slots holding `sequences` scored sequences
  const dimsOf = (batch: number, seq: number, sequences: number) => ({
    batch,
    seq,
    keys: seq,
    '?': seq,
    sequences,
    targets: sequences * responseTokens,
  })
  const rows = dimsOf(shape.batchRows, shape.seq, shape.batchRows)
  const layouts = [dimsOf(shape.trainRows, shape.seq, shape.trainRows)]
  // prompt trees: fewer rows, each the prompt and `branches` responses long
  if (shape.trainTrees)
    layouts.push(
      dimsOf(
        shape.trainTrees.rows,
        shape.promptTokens + shape.trainTrees.branches * responseTokens,
        shape.trainRows,
      ),
    )
  const stepPeak = Math.max(
    ...layouts.map((dims) => step.peakIntermediateBytes(dims, { order: 'onnxruntime' })),
  )
  const kvBytes =
    2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * shape.batchRows * shape.seq * F32
  const chunked = (opts.vocabChunks ?? defaultVocabChunks(cfg.vocab_size)) > 1
  const momentBytes = opts.optimizerStateDtype === 'bfloat16' ? 2 : F32
  const gradBytes = gradientDtype === 'float16' ? 2 : F32
  const parts: Record<string, number> = {
    runtime: FIXED_BYTES,
    weights: params * (lora ? BYTES[frozenDtype] : F32),
    // AdamW's two moments and the gradient it reads, in WebAssembly memory; LoRA adds its adapters
    optimizer: trainable * (2 * momentBytes + gradBytes) + (lora ? trainable * F32 : 0),
    // later micro-batches bring their gradients back as host copies before adding them in
    accumulated_gradients: shape.accumulates ? trainable * gradBytes : 0,
    // the walk counts the gradients onnxruntime allocates as outputs (onnxruntime-node copies them
    // into the optimizer's memory). A further gradient copy for checkpointed steps, fitted while a
    // reference copy was resident, overestimated once it was gone (1B: +19%) and since full
    // fine-tuning loads without a transient copy (small models: up to +29%); it was dropped
    training_session:
      SESSION_BYTES +
      stepPeak *
        (shape.checkpoint && (chunked || !lora) ? MIXED_BLOCKS_STEP_ARENA_FACTOR : STEP_ARENA_FACTOR),
    // one session scores the policy and, before training, the reference
    scoring_session:
      SESSION_BYTES + scoring.peakIntermediateBytes(rows, { order: 'onnxruntime' }) * SCORING_ARENA_FACTOR,
    generation:
      SESSION_BYTES +
      kvBytes +
      decode.peakIntermediateBytes(
        {
          batch: shape.batchRows,
          seq: shape.promptTokens,
          keys: shape.promptTokens,
          past: 0,
          '?': shape.promptTokens,
        },
        { order: 'onnxruntime' },
      ) *
        SCORING_ARENA_FACTOR,
  }
  return { bytes: peakOf(parts), parts }
}

/** The sessions of one workload each: on the CPU a policy holds one workload's at a time (Policy.enter). */
const SESSION_PARTS = ['training_session', 'scoring_session', 'generation'] as const

/** Everything else held throughout, plus the largest workload's sessions. */
export function peakOf(parts: Readonly<Record<string, number>>): number {
  const sessions = new Set<string>(SESSION_PARTS)
  const held = Object.entries(parts).reduce((a, [k, v]) => (sessions.has(k) ? a : a + v), 0)
  return held + Math.max(...SESSION_PARTS.map((k) => parts[k] ?? 0))
}
