/**
 * A trainable causal LM: weights (and LoRA adapters), the sessions that score, train and generate,
 * and the optimizer state. Trainable tensors live in the host AdamW's memory and are fed to every
 * session (without copies on the CPU; on WebGPU through device copies made once per change, see
 * ResidentWeights); so are the frozen ones (the LoRA base, the reference), possibly stored in a half
 * type (`weightsDtype`): every session reads the same host buffers. The sessions run on one
 * execution provider (CPU, WebGPU or CUDA): forward, backward and decoding on the device, the AdamW
 * update on the host.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import {
  clipCoefficient,
  createGraphSession,
  type GraphSession,
  gradName,
  HostAdamW,
  type HostAdamWConfig,
  type HostTensor,
  type Provider,
  STEP_OUTPUTS,
  slotName,
} from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import { writeFolderAtomically, writeJson } from './atomic-folder.ts'
import { type Padding, packRows, scoringFeeds, type TokenRow } from './batch.ts'
import type { ChatMessage } from './chat-template.ts'
import type { LlamaConfig } from './config.ts'
import { type Decoder, type GenerateOptions, type Generation, generate } from './generate.ts'
import { buildPolicyStepGraph, buildScoringGraph, type ModelTensors, type PolicyLoss } from './graphs.ts'
import { buildDecodeGraph } from './kv-cache.ts'
import { type LoadedModel, loadModel } from './load.ts'
import { type Adapters, applyAdapters, initAdapters, type LoraSpec, loraBKey, loraModules } from './lora.ts'
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
import type { StoredWeights } from './weights.ts'

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

/** A prompt: raw text, or chat messages rendered with the model's template (generation prompt added). */
export type PromptInput = string | readonly ChatMessage[]

export const STATE_FILE = 'policy_state.json'
export const STATE_TENSORS_FILE = 'policy_state.safetensors'

const floatCopy = (t: StoredTensor): FloatTensor => toStorage(t, 'float32') as FloatTensor

export class Policy {
  readonly config: LlamaConfig
  readonly model: LoadedModel<StoredWeights>
  readonly lora?: { spec: LoraSpec; adapters: Adapters }
  private readonly weights: StoredWeights
  private readonly optimizer: HostAdamW
  private readonly trainable: Map<string, FloatTensor>
  /** Full fine-tuning: the frozen reference weights (null: the policy itself until frozen). */
  private reference: StoredWeights | null = null
  private readonly zeroAdapters = new Map<string, HostTensor>()
  private scoring?: Promise<GraphSession>
  /** Full fine-tuning: scores the frozen reference, whose weights may be stored in a half type. */
  private referenceScoring?: Promise<GraphSession>
  private decode?: Promise<GraphSession>
  private readonly stepSessions = new Map<string, Promise<GraphSession>>()
  /** The weights each session reads, kept on the device between runs where the provider allows. */
  private readonly residentPolicy: ResidentWeights
  private readonly residentReference: ResidentWeights
  private seed: number
  step = 0

  constructor(
    model: LoadedModel<StoredWeights>,
    private readonly opts: PolicyOptions = {},
  ) {
    this.model = model
    this.config = model.config
    this.weights = model.weights
    this.seed = opts.seed ?? 0
    if (opts.lora) this.lora = { spec: opts.lora, adapters: initAdapters(this.config, opts.lora, this.seed) }
    // Trainable weights are float32; the frozen base is kept as weightsDtype (one tensor converted at a time).
    const storage = this.lora ? this.frozenDtype : 'float32'
    for (const [k, t] of this.weights)
      if (storageOf(t) !== storage) this.weights.set(k, toStorage(t, storage))
    this.trainable = this.lora ? this.lora.adapters : (this.weights as Map<string, FloatTensor>)
    this.optimizer = new HostAdamW(
      [...this.trainable].map(([name, t]) => ({ name, shape: t.shape, decay: t.shape.length > 1 })),
      opts.adamw,
    )
    this.adoptTrainable()
    this.residentPolicy = new ResidentWeights(this.provider, () => this.paramFeeds('policy'))
    this.residentReference = new ResidentWeights(this.provider, () => this.paramFeeds('reference'))
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
    return new Policy(await loadModel(dir, opts.lora ? (opts.weightsDtype ?? 'float32') : 'float32'), opts)
  }

  /** How frozen weights are stored. */
  private get frozenDtype(): WeightsDType {
    return this.opts.weightsDtype ?? 'float32'
  }

  /** Moves the trainable tensors into the optimizer's memory; the maps then hold live views of it. */
  private adoptTrainable(): void {
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

  private get modelTensors(): ModelTensors {
    return { cfg: this.config, weights: this.weights, lora: this.lora }
  }

  private get trainableKind(): 'all' | 'adapters' {
    return this.lora ? 'adapters' : 'all'
  }

  private openSession(graph: { serialize(): Parameters<typeof createGraphSession>[0] }, name: string) {
    return createGraphSession(graph.serialize(), {
      provider: this.provider,
      name,
      intraOpThreads: this.opts.intraOpThreads,
    })
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
    const session = await this.scoringSession(which)
    const batch = packRows(rows, { padding: this.opts.padding ?? 'right', padId: this.padId })
    const resident = which === 'policy' ? this.residentPolicy : this.residentReference
    const out = await resident.run(session, scoringFeeds(this.config, batch, 'float32'))
    const list = (k: string) => Array.from(out[k].data as Float32Array)
    return { sum: list('logps.sum'), mean: list('logps.mean'), count: list('logps.count') }
  }

  private scoringSession(which: 'policy' | 'reference'): Promise<GraphSession> {
    if (which === 'reference' && this.reference) {
      const model = { cfg: this.config, weights: this.reference }
      const bind = { ...this.bind, trainable: 'none' as const }
      this.referenceScoring ??= this.openSession(buildScoringGraph(model, bind).graph, 'reference')
      return this.referenceScoring
    }
    this.scoring ??= this.openSession(buildScoringGraph(this.modelTensors, this.bind).graph, 'scoring')
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
    let pending = this.stepSessions.get(opts.loss.name)
    if (!pending) {
      const built = buildPolicyStepGraph(this.modelTensors, { ...this.bind, loss: opts.loss })
      pending = this.openSession(built.graph, `step.${opts.loss.name}`)
      this.stepSessions.set(opts.loss.name, pending)
    }
    const session = await pending
    const metricNames = session.outputs
      .map((o) => o.name)
      .filter((n) => n !== STEP_OUTPUTS.loss && !n.startsWith('grad.'))
    let loss = 0
    let tokens = 0
    const metrics: Record<string, number> = Object.fromEntries(metricNames.map((n) => [n, 0]))
    for (const [i, b] of micro.entries()) {
      const batch = packRows(b.rows, { padding: this.opts.padding ?? 'right', padId: this.padId })
      const out = await this.residentPolicy.run(session, {
        ...scoringFeeds(this.config, batch, 'float32'),
        ...b.feeds,
      })
      for (const name of this.trainable.keys()) this.optimizer.setGrad(name, out[gradName(name)], i > 0)
      loss += Number(out[STEP_OUTPUTS.loss].data[0]) / micro.length
      for (const n of metricNames) metrics[n] += Number(out[n].data[0]) / micro.length
      tokens += batch.mask.reduce((a, m) => a + m, 0)
    }
    const gradNorm = this.optimizer.gradNorm() / micro.length
    const clip = opts.maxGradNorm ? clipCoefficient(gradNorm, opts.maxGradNorm) : 1
    this.step += 1
    this.optimizer.step({ step: this.step, lr: opts.lr }, clip / micro.length)
    this.trainableChanged()
    return { loss, gradNorm, metrics, tokens }
  }

  /** The trainable tensors changed (and the reference with them while it is the policy itself). */
  private trainableChanged(): void {
    this.residentPolicy.changed()
    if (!this.reference) this.residentReference.changed()
  }

  /** Renders (chat) prompts, generates, and returns text, tokens and their log-probs per prompt. */
  async generate(prompts: readonly PromptInput[], opts: GenerateOptions): Promise<Generation[]> {
    this.decode ??= this.openSession(buildDecodeGraph(this.modelTensors, this.bind), 'decode')
    const session = await this.decode
    const decoder: Decoder = {
      cfg: this.config,
      dtype: 'float32',
      run: (feeds) => this.residentPolicy.run(session, feeds),
      tokenizer: this.model.tokenizer,
      stopTokenIds: this.model.stopTokenIds,
    }
    const ids = prompts.map((p) =>
      this.model.tokenizer.encode(
        typeof p === 'string' ? p : this.requireTemplate().render(p, { addGenerationPrompt: true }),
      ),
    )
    return generate(decoder, ids, opts)
  }

  /**
   * Makes the current model the reference: full fine-tuning copies the weights; LoRA merges the
   * adapters into the base and starts fresh ones (the reference is then the base alone).
   */
  async freezeReference(): Promise<void> {
    if (this.lora) await this.mergeAdapters()
    else this.reference = new Map([...this.weights].map(([k, t]) => [k, toStorage(t, this.frozenDtype)]))
    this.residentReference.changed()
  }

  /** W += (alpha / r) B A into the base, then new adapters (B = 0) with fresh optimizer moments. */
  async mergeAdapters(): Promise<void> {
    if (!this.lora) throw new ValidationError('mergeAdapters needs a LoRA policy')
    applyAdapters(this.weights, this.lora.adapters, this.lora.spec, 1)
    this.seed += 1
    for (const [k, t] of initAdapters(this.config, this.lora.spec, this.seed)) this.lora.adapters.set(k, t)
    this.adoptTrainable()
    this.trainableChanged()
    this.residentReference.changed()
  }

  /** Full weights (adapters merged into a copy) with config and tokenizer files. */
  async saveFull(dir: string): Promise<number> {
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
    return saveAdapters(dir, this.config, this.lora, this.model.dir)
  }

  exportState(): PolicyState {
    const tensors = new Map<string, FloatTensor>()
    for (const [name, t] of Object.entries(this.optimizer.read(true))) {
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
    for (const name of this.trainable.keys()) {
      const m = host(slotName('exp_avg', name))
      const v = host(slotName('exp_avg_sq', name))
      this.optimizer.load(name, host(name)!, m && v ? { m, v } : undefined)
    }
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
    this.residentPolicy.changed()
    this.residentReference.changed()
    this.step = state.step
  }

  /** An independent copy: its own weights, adapters, optimizer state and sessions. */
  async fork(): Promise<Policy> {
    const weights: StoredWeights = new Map([...this.weights].map(([k, t]) => [k, toStorage(t, storageOf(t))]))
    const copy = new Policy({ ...this.model, weights }, { ...this.opts, seed: this.seed })
    await copy.importState(this.exportState())
    return copy
  }

  /** Writes exportState() into `dir` atomically: `policy_state.safetensors` + `policy_state.json`. */
  async saveState(dir: string): Promise<number> {
    const state = this.exportState()
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

  private async releaseSessions(): Promise<void> {
    const all = [this.scoring, this.referenceScoring, this.decode, ...this.stepSessions.values()].filter(
      (s) => s !== undefined,
    )
    this.scoring = undefined
    this.referenceScoring = undefined
    this.decode = undefined
    this.stepSessions.clear()
    for (const s of all) await (await s).release()
  }

  async dispose(): Promise<void> {
    await this.releaseSessions()
    await this.residentPolicy.release()
    await this.residentReference.release()
  }
}
