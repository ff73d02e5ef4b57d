/**
 * A trainable causal LM: weights (and LoRA adapters), the sessions that score, train and generate,
 * and the optimizer state. The sessions run on one execution provider (CPU, WebGPU or CUDA).
 *
 * CPU and CUDA: trainable tensors live in the host AdamW's memory and are fed to every session
 * (without copies on the CPU); forward and backward run on the provider, the AdamW update on the
 * host. WebGPU: trainable tensors, gradient accumulators and AdamW moments stay on the device
 * (DeviceTraining), the KV cache of generation too; a step moves only its batch up and scalars down,
 * and checkpoints and exports read the state back explicitly. Frozen tensors (the LoRA base, the
 * reference), possibly stored in a half type (`weightsDtype`), are uploaded once per change
 * (ResidentWeights). `transfers` and `lastGeneration` count the bytes that crossed.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import {
  clipCoefficient,
  createGraphSession,
  type GraphSession,
  gradName,
  gradScaleOf,
  HostAdamW,
  type HostAdamWConfig,
  type HostTensor,
  isGradientOutput,
  type LossScaleConfig,
  LossScaler,
  type Provider,
  STEP_OUTPUTS,
  slotName,
  type TransferCounts,
  transfersBetween,
  transferTotals,
} from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import { writeFolderAtomically, writeJson } from './atomic-folder.ts'
import { type Padding, packRows, scoringFeeds, type TokenRow } from './batch.ts'
import type { ChatMessage } from './chat-template.ts'
import type { LlamaConfig } from './config.ts'
import { DeviceTraining } from './device-training.ts'
import { type Decoder, type GenerateOptions, type Generation, generate } from './generate.ts'
import {
  buildPolicyObjective,
  buildPolicyStepGraph,
  buildScoringGraph,
  type ModelTensors,
  type PolicyLoss,
} from './graphs.ts'
import { buildDecodeGraph, type DecodePick, deviceCacheOutputs } from './kv-cache.ts'
import { type LoadedModel, loadModel, readModelConfig } from './load.ts'
import { type Adapters, applyAdapters, initAdapters, type LoraSpec, loraBKey, loraModules } from './lora.ts'
import { checkPrecision, type Precision, requireFloat16Compute } from './precision.ts'
import { ResidentWeights } from './resident-weights.ts'
import {
  assignValues,
  type FloatTensor,
  isHalf,
  readSafetensors,
  type StoredTensor,
  storageOf,
  toStorage,
  writeSafetensors,
} from './safetensors.ts'
import { saveAdapters, saveFullModel } from './save.ts'
import { HALF_INPUT_DTYPE } from './weight-source.ts'
import { expectedWeightShapes, type StoredWeights } from './weights.ts'

export interface PolicyOptions {
  /** Train LoRA adapters on a frozen base; full fine-tuning when absent. */
  lora?: LoraSpec
  /** Seeds the adapters' initialisation. */
  seed?: number
  /** AdamW's hyperparameters and how its moments are stored (stateDtype). */
  adamw?: HostAdamWConfig
  /** Padding side of scoring and training batches (results do not depend on it). */
  padding?: Padding
  intraOpThreads?: number
  /** Where the sessions run (an available provider: see resolveProvider); CPU when absent. */
  provider?: Provider
  /** LM head in vocabulary chunks for scoring and training: (B, T, V) logits never all alive. */
  vocabChunks?: number
  /** Gradient checkpointing: training recomputes each decoder layer instead of storing its activations. */
  checkpoint?: boolean
  /** How frozen weights are stored (the trainable ones are float32). */
  weightsDtype?: WeightsDType
  /** float16: scoring and training compute in float16 from float32 master weights (WebGPU only). */
  precision?: Precision
  /** Loss scaling of float16 training (dynamic from 2^16 by default). */
  lossScale?: LossScaleConfig
}

export type WeightsDType = 'float32' | 'float16' | 'bfloat16'

/** A weight as a graph feed: float32, or half bits as bindWeights declares them. */
const weightFeed = (t: StoredTensor): HostTensor =>
  isHalf(t)
    ? { dtype: HALF_INPUT_DTYPE, dims: t.shape, data: t.data }
    : { dtype: 'float32', dims: t.shape, data: t.data }

/** One micro-batch: token rows and the extra feeds its loss declares (e.g. reference log-probs). */
export interface TrainBatch {
  rows: readonly TokenRow[]
  /** Rows with one prompt share a packed row, at most this many to a row (prompt trees); 1 when absent. */
  maxBranches?: number
  feeds?: Readonly<Record<string, HostTensor>>
}

export interface TrainStepOptions {
  lr: number
  loss: PolicyLoss
  /** Clip the global gradient norm to this value (off when absent or 0). */
  maxGradNorm?: number
}

export interface TrainStepResult {
  loss: number
  gradNorm: number
  metrics: Record<string, number>
  tokens: number
  /** Bytes the step moved between host and device (zero on the CPU provider). */
  transfers: TransferCounts
}

/** What the last generation moved between host and device, run by run. */
export interface GenerationTransfers {
  /** One entry per run of the decode graph: the prefill first, then one per decoded position. */
  runs: TransferCounts[]
  /** Tokens generated, over all rows. */
  tokens: number
}

export interface SequenceScores {
  sum: number[]
  mean: number[]
  count: number[]
}

/** Everything a checkpoint needs to continue training exactly: tensors by name plus the step. */
export interface PolicyState {
  step: number
  /** Trainable tensors, `optim.exp_avg.<key>`/`optim.exp_avg_sq.<key>`, `reference.<key>` (full) or `base.<key>` (LoRA). */
  tensors: Map<string, FloatTensor>
}

/** The kinds of session a policy runs: generation, scoring, training steps. */
type Workload = 'decode' | 'scoring' | 'step'

/** A prompt: raw text, or chat messages rendered with the model's template (generation prompt added). */
export type PromptInput = string | readonly ChatMessage[]

export const STATE_FILE = 'policy_state.json'
export const STATE_TENSORS_FILE = 'policy_state.safetensors'

const floatCopy = (t: StoredTensor): FloatTensor => toStorage(t, 'float32') as FloatTensor
/** A trained tensor as the optimizer sees it: weight decay for matrices only. */
const trainableParam = (name: string, shape: readonly number[]) => ({
  name,
  shape: [...shape],
  decay: shape.length > 1,
})

export class Policy {
  readonly config: LlamaConfig
  readonly model: LoadedModel<StoredWeights>
  readonly lora?: { spec: LoraSpec; adapters: Adapters }
  private readonly weights: StoredWeights
  /** CPU and CUDA: the host AdamW, which owns the trainable tensors' memory. */
  private readonly optimizer?: HostAdamW
  /** WebGPU: the optimizer and the trainable tensors on the device. */
  private readonly device?: DeviceTraining
  private readonly trainable: Map<string, FloatTensor>
  /**
   * Full fine-tuning: a snapshot of the frozen reference weights, taken only when the policy is
   * trained while the reference is still wanted (null: the reference is the policy itself).
   */
  private reference: StoredWeights | null = null
  /**
   * Full fine-tuning: 'frozen' from freezeReference until releaseReference; 'released' after it.
   * While frozen and not yet trained, the reference is the policy's own weights (no copy).
   */
  private referenceState: 'policy' | 'frozen' | 'released' = 'policy'
  private readonly zeroAdapters = new Map<string, HostTensor>()
  private scoring?: Promise<GraphSession>
  /** Full fine-tuning: scores the frozen reference, whose weights may be stored in a half type. */
  private referenceScoring?: Promise<GraphSession>
  /** Decode sessions by what they return (a WebGPU policy opens a greedy one when asked for greedy text). */
  private readonly decodeSessions = new Map<DecodePick, Promise<GraphSession>>()
  private readonly stepSessions = new Map<string, Promise<GraphSession>>()
  /** What the policy ran last (see enter). */
  private workload?: Workload
  /** The weights each session reads, kept on the device between runs where the provider allows. */
  private readonly residentPolicy: ResidentWeights
  private readonly residentReference: ResidentWeights
  private seed: number
  step = 0
  /** Bytes moved by the last generate() call. */
  lastGeneration?: GenerationTransfers

  /** `optimizer`: a host AdamW whose param memory the full model's weights were read into (load). */
  constructor(
    model: LoadedModel<StoredWeights>,
    private readonly opts: PolicyOptions = {},
    optimizer?: HostAdamW,
  ) {
    this.model = model
    this.config = model.config
    this.weights = model.weights
    this.seed = opts.seed ?? 0
    checkPrecision(opts.precision, this.provider)
    if (opts.lora) this.lora = { spec: opts.lora, adapters: initAdapters(this.config, opts.lora, this.seed) }
    // Trainable weights are float32; the frozen base is kept as weightsDtype (one tensor converted at a time).
    const storage = this.lora ? this.frozenDtype : 'float32'
    for (const [k, t] of this.weights)
      if (storageOf(t) !== storage) this.weights.set(k, toStorage(t, storage))
    this.trainable = this.lora ? this.lora.adapters : (this.weights as Map<string, FloatTensor>)
    const params = [...this.trainable].map(([name, t]) => trainableParam(name, t.shape))
    this.residentPolicy = new ResidentWeights(this.provider, () => this.paramFeeds('policy'))
    this.residentReference = new ResidentWeights(this.provider, () => this.paramFeeds('reference'))
    if (this.provider === 'webgpu') {
      this.device = new DeviceTraining(
        this.residentPolicy,
        params,
        opts.adamw,
        () => Object.fromEntries([...this.trainable].map(([k, t]) => [k, weightFeed(t)])),
        opts.intraOpThreads,
        opts.precision === 'float16' ? new LossScaler(opts.lossScale) : undefined,
      )
    } else {
      if (optimizer && optimizer.names().join() !== params.map((p) => p.name).join()) {
        throw new ValidationError("the given optimizer's params are not this policy's trainable tensors")
      }
      this.optimizer = optimizer ?? new HostAdamW(params, opts.adamw)
    }
    this.adoptTrainable()
    if (this.lora) {
      for (const m of loraModules(this.config, this.lora.spec)) {
        const b = this.lora.adapters.get(loraBKey(m.module))!
        this.zeroAdapters.set(loraBKey(m.module), {
          dtype: 'float32',
          dims: b.shape,
          data: new Float32Array(b.data.length),
        })
      }
    }
  }

  static async load(dir: string, opts: PolicyOptions = {}): Promise<Policy> {
    if (opts.precision === 'float16') await requireFloat16Compute(opts.provider ?? 'cpu')
    if (opts.lora) return new Policy(await loadModel(dir, opts.weightsDtype ?? 'float32'), opts)
    if (opts.provider === 'webgpu') return new Policy(await loadModel(dir, 'float32'), opts)
    // Full fine-tuning on the host: every weight is read straight into the optimizer's param memory,
    // so the checkpoint is never held twice
    const config = await readModelConfig(dir)
    const shapes = [...expectedWeightShapes(config)]
    const optimizer = new HostAdamW(
      shapes.map(([name, shape]) => trainableParam(name, shape)),
      opts.adamw,
    )
    const model = await loadModel(dir, 'float32', (name) => optimizer.param(name).data)
    return new Policy(model, opts, optimizer)
  }

  /** How frozen weights are stored. */
  private get frozenDtype(): WeightsDType {
    return this.opts.weightsDtype ?? 'float32'
  }

  /**
   * Host AdamW: moves the trainable tensors into the optimizer's memory (the maps then hold live
   * views of it). Device: the next step starts from the host values, with fresh moments.
   */
  private adoptTrainable(): void {
    if (!this.optimizer) {
      this.device!.loaded()
      return
    }
    for (const [name, t] of this.trainable) {
      this.optimizer.load(name, { dtype: 'float32', dims: t.shape, data: t.data })
      this.trainable.set(name, { shape: t.shape, data: this.optimizer.param(name).data as Float32Array })
    }
  }

  get provider(): Provider {
    return this.opts.provider ?? 'cpu'
  }

  /** Bytes of every weight, adapter and reference weight as stored (each once). */
  weightBytes(): number {
    let n = 0
    for (const t of this.weights.values()) n += t.data.byteLength
    if (this.lora) for (const t of this.lora.adapters.values()) n += t.data.byteLength
    if (this.reference) for (const t of this.reference.values()) n += t.data.byteLength
    return n
  }

  /** Graph options for this policy's provider. */
  private get bind() {
    return {
      trainable: this.trainableKind,
      frozen: 'inputs' as const,
      vocabChunks: this.opts.vocabChunks,
      checkpoint: this.opts.checkpoint,
      fusedMatMul: this.provider !== 'webgpu',
    }
  }

  /** Graph options of the scoring and training graphs (generation computes in float32). */
  private get computeBind() {
    return { ...this.bind, precision: this.opts.precision }
  }

  private get modelTensors(): ModelTensors {
    return { cfg: this.config, weights: this.weights, lora: this.lora }
  }

  private get trainableKind(): 'all' | 'adapters' {
    return this.lora ? 'adapters' : 'all'
  }

  private openSession(
    graph: { serialize(): Parameters<typeof createGraphSession>[0] },
    name: string,
    stateOutputs?: Record<string, string>,
  ) {
    return createGraphSession(graph.serialize(), {
      provider: this.provider,
      name,
      intraOpThreads: this.opts.intraOpThreads,
      stateOutputs,
    })
  }

  /** WebGPU: the trainable tensors on the host brought up to date with the device (an explicit read). */
  private async syncHost(): Promise<void> {
    if (!this.device?.hostStale) return
    for (const [name, t] of Object.entries(await this.device.read(false)))
      this.trainable.set(name, { shape: [...t.dims], data: t.data as Float32Array })
    this.device.hostStale = false
  }

  /**
   * The weights a scoring run reads: the policy's, or the reference's (a snapshot of full
   * fine-tuning, or the LoRA base with zero adapters; the policy itself until one is frozen).
   */
  private resident(which: 'policy' | 'reference'): ResidentWeights {
    return which === 'reference' && (this.reference || this.lora)
      ? this.residentReference
      : this.residentPolicy
  }

  /** Feeds of every weight (the host buffers themselves): the policy's own, or the reference's. */
  private paramFeeds(which: 'policy' | 'reference'): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {}
    const base = which === 'reference' && this.reference ? this.reference : this.weights
    for (const [name, t] of base) feeds[name] = weightFeed(t)
    if (this.lora) for (const [name, t] of this.lora.adapters) feeds[name] = weightFeed(t)
    if (which === 'reference' && this.lora) for (const [name, zero] of this.zeroAdapters) feeds[name] = zero
    return feeds
  }

  /** Token rows of chat exchanges: the prompt rendered with the generation prompt, then the reply as the template closes it. */
  tokenizeExchange(prompt: readonly ChatMessage[], response: string): TokenRow {
    const template = this.requireTemplate()
    const head = template.render(prompt, { addGenerationPrompt: true })
    const full = template.render([...prompt, { role: 'assistant', content: response }], {
      addGenerationPrompt: false,
    })
    const tail = full.startsWith(head) ? full.slice(head.length) : response
    return { prompt: this.model.tokenizer.encode(head), response: this.model.tokenizer.encode(tail) }
  }

  private requireTemplate() {
    if (!this.model.chatTemplate)
      throw new ValidationError(`the model in ${this.model.dir} has no chat template`)
    return this.model.chatTemplate
  }

  /** Response log-probs (sum, mean, token count) under the policy or the frozen reference. */
  async logprobs(
    rows: readonly TokenRow[],
    which: 'policy' | 'reference' = 'policy',
  ): Promise<SequenceScores> {
    if (which === 'reference' && !this.lora && this.referenceState === 'released') {
      throw new ValidationError(
        'the reference was released after its log-probs were scored: freeze a new one with freezeReference()',
      )
    }
    await this.enter('scoring')
    const session = await this.scoringSession(which)
    const batch = packRows(rows, { padding: this.opts.padding ?? 'right', padId: this.padId })
    const out = await this.resident(which).run(session, scoringFeeds(this.config, batch, 'float32'))
    const list = (k: string) => Array.from(out[k].data as Float32Array)
    return { sum: list('logps.sum'), mean: list('logps.mean'), count: list('logps.count') }
  }

  private scoringSession(which: 'policy' | 'reference'): Promise<GraphSession> {
    if (which === 'reference' && this.reference) {
      const model = { cfg: this.config, weights: this.reference }
      const bind = { ...this.computeBind, trainable: 'none' as const }
      this.referenceScoring ??= this.openSession(buildScoringGraph(model, bind).graph, 'reference')
      return this.referenceScoring
    }
    this.scoring ??= this.openSession(buildScoringGraph(this.modelTensors, this.computeBind).graph, 'scoring')
    return this.scoring
  }

  private get padId(): number {
    return this.model.tokenizer.padTokenId ?? this.config.pad_token_id ?? 0
  }

  /** One optimizer step (AdamW) over one or more micro-batches; gradients are averaged. */
  async trainStep(
    batches: TrainBatch | readonly TrainBatch[],
    opts: TrainStepOptions,
  ): Promise<TrainStepResult> {
    const micro = Array.isArray(batches) ? (batches as readonly TrainBatch[]) : [batches as TrainBatch]
    if (micro.length === 0) throw new ValidationError('a training step needs at least one micro-batch')
    await this.snapshotReference()
    await this.enter('step')
    const before = transferTotals()
    let tokens = 0
    const feedsOf = (b: TrainBatch): Record<string, HostTensor> => {
      // the sequences' tokens, as if each had a row of its own: data throughput, whatever the packing
      tokens += b.rows.reduce((n, r) => n + r.prompt.length + r.response.length, 0)
      const batch = packRows(b.rows, {
        padding: this.opts.padding ?? 'right',
        padId: this.padId,
        maxBranches: b.maxBranches,
      })
      return { ...scoringFeeds(this.config, batch, 'float32'), ...b.feeds }
    }
    const r = this.device
      ? await this.device.step(
          opts.loss.name,
          () => buildPolicyObjective(this.modelTensors, { ...this.computeBind, loss: opts.loss }),
          micro.map(feedsOf),
          // Unclipped: an infinite threshold makes the coefficient 1.
          { step: this.step + 1, lr: opts.lr, maxGradNorm: opts.maxGradNorm || Number.POSITIVE_INFINITY },
        )
      : await this.hostStep(micro, feedsOf, opts)
    this.step += 1
    return { ...r, tokens, transfers: transfersBetween(before, transferTotals()) }
  }

  /** Gradients from the provider, the AdamW update in host memory; one micro-batch's feeds alive at a time. */
  private async hostStep(
    micro: readonly TrainBatch[],
    feedsOf: (b: TrainBatch) => Record<string, HostTensor>,
    opts: TrainStepOptions,
  ): Promise<{ loss: number; gradNorm: number; metrics: Record<string, number> }> {
    const optimizer = this.optimizer!
    let pending = this.stepSessions.get(opts.loss.name)
    if (!pending) {
      const built = buildPolicyStepGraph(this.modelTensors, {
        ...this.bind,
        loss: opts.loss,
        gradientDtype: optimizer.gradDtype,
      })
      pending = this.openSession(built.graph, `step.${opts.loss.name}`)
      this.stepSessions.set(opts.loss.name, pending)
    }
    const session = await pending
    const metricNames = session.outputs
      .map((o) => o.name)
      .filter((n) => n !== STEP_OUTPUTS.loss && !isGradientOutput(n))
    let loss = 0
    const metrics: Record<string, number> = Object.fromEntries(metricNames.map((n) => [n, 0]))
    // On the CPU the first micro-batch writes its gradients straight into the optimizer's memory.
    const direct = this.provider === 'cpu'
    const into = () =>
      Object.fromEntries([...this.trainable.keys()].map((k) => [gradName(k), optimizer.gradBuffer(k)]))
    for (const [i, b] of micro.entries()) {
      const first = direct && i === 0
      const out = await this.residentPolicy.run(session, feedsOf(b), undefined, first ? into() : undefined)
      for (const name of this.trainable.keys()) {
        const scale = gradScaleOf(out, name)
        if (first) optimizer.setGradScale(name, scale)
        else optimizer.setGrad(name, out[gradName(name)], i > 0, scale)
      }
      loss += Number(out[STEP_OUTPUTS.loss].data[0]) / micro.length
      for (const n of metricNames) metrics[n] += Number(out[n].data[0]) / micro.length
    }
    const gradNorm = optimizer.gradNorm() / micro.length
    const clip = opts.maxGradNorm ? clipCoefficient(gradNorm, opts.maxGradNorm) : 1
    optimizer.step({ step: this.step + 1, lr: opts.lr }, clip / micro.length)
    this.trainableChanged()
    return { loss, gradNorm, metrics }
  }

  /** The trainable tensors changed (and the reference with them while it is the policy itself). */
  private trainableChanged(): void {
    this.residentPolicy.changed()
    if (!this.reference) this.residentReference.changed()
  }

  /** Renders (chat) prompts, generates, and returns text, tokens and their log-probs per prompt. */
  async generate(prompts: readonly PromptInput[], opts: GenerateOptions): Promise<Generation[]> {
    const cacheOnDevice = this.decodesOnDevice
    await this.enter('decode')
    const runs: TransferCounts[] = []
    const decoder: Decoder = {
      cfg: this.config,
      dtype: 'float32',
      run: async (feeds, pick = 'logits') => {
        const session = await this.decodeSession(pick)
        const before = transferTotals()
        const out = await this.residentPolicy.run(session, feeds)
        runs.push(transfersBetween(before, transferTotals()))
        return out
      },
      cacheOnDevice,
      greedyOnDevice: cacheOnDevice,
      tokenizer: this.model.tokenizer,
      stopTokenIds: this.model.stopTokenIds,
    }
    const ids = prompts.map((p) => this.promptIds(p))
    const state = this.residentPolicy.state
    const cacheNames = Object.values(deviceCacheOutputs(this.config))
    if (cacheOnDevice) {
      const { num_key_value_heads: kv, head_dim: d } = this.config
      const empty = { dtype: 'float32' as const, dims: [ids.length, kv, 0, d], data: new Float32Array(0) }
      for (const name of cacheNames) state.set(name, empty)
    }
    try {
      const out = await generate(decoder, ids, opts)
      this.lastGeneration = { runs, tokens: out.reduce((a, g) => a + g.tokens.length, 0) }
      return out
    } finally {
      if (cacheOnDevice) for (const name of cacheNames) state.delete(name)
    }
  }

  /** WebGPU keeps the KV cache beside the weights (the decode graph's state outputs replace it) and takes greedy tokens there. */
  private get decodesOnDevice(): boolean {
    return this.provider === 'webgpu'
  }

  private decodeSession(pick: DecodePick): Promise<GraphSession> {
    let session = this.decodeSessions.get(pick)
    if (!session) {
      const cacheOnDevice = this.decodesOnDevice
      session = this.openSession(
        buildDecodeGraph(this.modelTensors, { ...this.bind, cacheOnDevice, pick }),
        pick === 'greedy' ? 'decode_greedy' : 'decode',
        cacheOnDevice ? deviceCacheOutputs(this.config) : undefined,
      )
      this.decodeSessions.set(pick, session)
    }
    return session
  }

  /**
   * Token ids of a prompt as transformers makes them: a chat through the template (which writes its
   * own special tokens), plain text with the tokenizer's special tokens (Llama's begin-of-text).
   */
  promptIds(prompt: PromptInput): number[] {
    if (typeof prompt === 'string') return this.model.tokenizer.encode(prompt, { addSpecialTokens: true })
    return this.model.tokenizer.encode(this.requireTemplate().render(prompt, { addGenerationPrompt: true }))
  }

  /**
   * Makes the current model the reference. LoRA merges the adapters into the base and starts fresh
   * ones (the reference is then the base alone). Full fine-tuning copies nothing yet: the reference
   * is the policy's own weights until a training step, which first snapshots them, unless
   * releaseReference() came before (a run scores all its reference log-probs first, then releases).
   */
  async freezeReference(): Promise<void> {
    await this.syncHost()
    if (this.lora) await this.mergeAdapters()
    else {
      this.reference = null
      this.referenceState = 'frozen'
    }
    this.residentReference.changed()
  }

  /**
   * The frozen reference is no longer scored: full fine-tuning drops its snapshot, or never takes
   * one (a weights-sized copy saved). LoRA's reference is its base, which stays.
   */
  async releaseReference(): Promise<void> {
    if (this.lora) return
    this.reference = null
    this.referenceState = 'released'
    this.residentReference.changed()
    const session = this.referenceScoring
    this.referenceScoring = undefined
    if (session) await (await session).release()
  }

  /** Before full fine-tuning's weights change: a frozen reference still wanted gets its own copy. */
  private async snapshotReference(): Promise<void> {
    if (this.lora || this.referenceState !== 'frozen' || this.reference) return
    await this.syncHost()
    this.reference = new Map([...this.weights].map(([k, t]) => [k, toStorage(t, this.frozenDtype)]))
    this.residentReference.changed()
  }

  /** W += (alpha / r) B A into the base, then new adapters (B = 0) with fresh optimizer moments. */
  async mergeAdapters(): Promise<void> {
    if (!this.lora) throw new ValidationError('mergeAdapters needs a LoRA policy')
    await this.syncHost()
    applyAdapters(this.weights, this.lora.adapters, this.lora.spec, 1)
    this.seed += 1
    for (const [k, t] of initAdapters(this.config, this.lora.spec, this.seed)) this.lora.adapters.set(k, t)
    this.adoptTrainable()
    this.trainableChanged()
    this.residentReference.changed()
  }

  /** Full weights (adapters merged into a copy) with config and tokenizer files. */
  async saveFull(dir: string): Promise<number> {
    await this.syncHost()
    let weights = this.weights
    if (this.lora) {
      weights = new Map([...this.weights].map(([k, t]) => [k, floatCopy(t)]))
      applyAdapters(weights, this.lora.adapters, this.lora.spec, 1)
    }
    return saveFullModel(dir, { dir: this.model.dir, weights })
  }

  /** The adapters in PEFT's layout. */
  async saveAdapter(dir: string): Promise<number> {
    if (!this.lora) throw new ValidationError('saveAdapter needs a LoRA policy')
    await this.syncHost()
    return saveAdapters(dir, this.config, this.lora, this.model.dir)
  }

  /** The state as it is now; on WebGPU read back from the device. */
  async exportState(): Promise<PolicyState> {
    const tensors = new Map<string, FloatTensor>()
    const trained = this.optimizer ? this.optimizer.read(true) : await this.device!.read(true)
    for (const [name, t] of Object.entries(trained)) {
      tensors.set(name, { shape: [...t.dims], data: t.data as Float32Array })
    }
    if (this.lora) for (const [k, t] of this.weights) tensors.set(`base.${k}`, floatCopy(t))
    if (this.reference) for (const [k, t] of this.reference) tensors.set(`reference.${k}`, floatCopy(t))
    return { step: this.step, tensors }
  }

  async importState(state: PolicyState): Promise<void> {
    const host = (name: string): HostTensor | undefined => {
      const t = state.tensors.get(name)
      return t && { dtype: 'float32', dims: t.shape, data: t.data }
    }
    const missing = [...this.trainable.keys()].filter((k) => !state.tensors.has(k))
    if (missing.length)
      throw new ValidationError(
        `policy state lacks ${missing.length} tensors: ${missing.slice(0, 5).join(', ')}`,
      )
    if (this.optimizer) {
      for (const name of this.trainable.keys()) {
        const m = host(slotName('exp_avg', name))
        const v = host(slotName('exp_avg_sq', name))
        this.optimizer.load(name, host(name)!, m && v ? { m, v } : undefined)
      }
    } else this.loadOnDevice(host)
    if (this.lora) {
      for (const [k, t] of this.weights) {
        const saved = state.tensors.get(`base.${k}`)
        if (saved) assignValues(t, saved.data)
      }
    }
    const ref = [...state.tensors].filter(([k]) => k.startsWith('reference.'))
    this.reference = ref.length
      ? new Map(ref.map(([k, t]) => [k.slice('reference.'.length), toStorage(t, this.frozenDtype)]))
      : null
    this.referenceState = this.reference ? 'frozen' : 'policy'
    this.residentPolicy.changed()
    this.residentReference.changed()
    this.step = state.step
  }

  /** WebGPU: host copies of the restored tensors; the next step uploads them with their moments. */
  private loadOnDevice(host: (name: string) => HostTensor | undefined): void {
    const slots: Record<string, HostTensor> = {}
    for (const [name, t] of this.trainable) {
      this.trainable.set(name, { shape: t.shape, data: (host(name)!.data as Float32Array).slice() })
      for (const slot of ['exp_avg', 'exp_avg_sq']) {
        const saved = host(slotName(slot, name))
        if (saved) slots[slotName(slot, name)] = saved
      }
    }
    this.device!.loaded(Object.keys(slots).length > 0 ? slots : undefined)
  }

  /** An independent copy: its own weights, adapters, optimizer state and sessions. */
  async fork(): Promise<Policy> {
    const weights: StoredWeights = new Map([...this.weights].map(([k, t]) => [k, toStorage(t, storageOf(t))]))
    const copy = new Policy({ ...this.model, weights }, { ...this.opts, seed: this.seed })
    await copy.importState(await this.exportState())
    return copy
  }

  /** Writes exportState() into `dir` atomically: `policy_state.safetensors` + `policy_state.json`. */
  async saveState(dir: string): Promise<number> {
    const state = await this.exportState()
    return writeFolderAtomically(dir, async (tmp) => {
      await writeSafetensors(path.join(tmp, STATE_TENSORS_FILE), state.tensors)
      await writeJson(path.join(tmp, STATE_FILE), {
        step: state.step,
        lora: this.lora?.spec ?? null,
        seed: this.seed,
      })
    })
  }

  /** Restores what saveState wrote (into a policy opened on the same model with the same options). */
  async loadState(dir: string): Promise<void> {
    const meta = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as {
      step: number
      seed: number
    }
    this.seed = meta.seed
    await this.importState({
      step: meta.step,
      tensors: await readSafetensors(path.join(dir, STATE_TENSORS_FILE)),
    })
  }

  /**
   * On the CPU each session's onnxruntime arena keeps every block it ever carved, and step and
   * scoring shapes change from batch to batch, so sessions living for a whole run grow past any one
   * batch's peak and add up across phases (10m model, 48 queries per iteration: 6.6 GB after the
   * first iteration's training, 10.0 GB after the third). A run moves between generation, scoring
   * and training a few times per iteration; each move releases the other kinds' sessions, and their
   * arenas with them. Other providers keep theirs: their state lives in the sessions' device buffers.
   */
  private async enter(workload: Workload): Promise<void> {
    if (this.provider !== 'cpu' || this.workload === workload) return
    this.workload = workload
    await this.releaseSessions(workload)
  }

  /** Releases every session but those of `keep`. */
  private async releaseSessions(keep?: Workload): Promise<void> {
    const released: (Promise<GraphSession> | undefined)[] = []
    if (keep !== 'scoring') {
      released.push(this.scoring, this.referenceScoring)
      this.scoring = undefined
      this.referenceScoring = undefined
    }
    if (keep !== 'decode') {
      released.push(...this.decodeSessions.values())
      this.decodeSessions.clear()
    }
    if (keep !== 'step') {
      released.push(...this.stepSessions.values())
      this.stepSessions.clear()
    }
    for (const s of released) if (s) await (await s).release()
  }

  async dispose(): Promise<void> {
    await this.device?.release()
    await this.releaseSessions()
    await this.residentPolicy.release()
    await this.residentReference.release()
  }
}
