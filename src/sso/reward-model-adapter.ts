/**
 * A Bradley-Terry reward model on the model layer's decoder: the final hidden state of each sequence's
 * last token times a scalar head `score.weight` (1, H), as Hugging Face's LlamaForSequenceClassification
 * names it. Forward and backward run on the job's execution provider; all weights and the head
 * train with AdamW on the host.
 */
import {
  buildGradStep,
  createGraphSession,
  type Dim,
  Graph,
  type GraphSession,
  gradName,
  gradScaleOf,
  HostAdamW,
  type HostTensor,
  isGradientOutput,
  matMul,
  mul,
  type Provider,
  reduceSum,
  resolveProvider,
  split,
  squeeze,
  type Tensor,
  transpose,
  unsqueeze,
} from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import { declareDecoderInputs, INPUT, packRows, scoringFeeds, type TokenRow } from '../model/batch.ts'
import { chatMessages } from '../model/chat-template.ts'
import { bindModel } from '../model/graphs.ts'
import { llamaModel } from '../model/llama.ts'
import { type LoadedModel, loadModel } from '../model/load.ts'
import { Random } from '../model/random.ts'
import { saveFullModel } from '../model/save.ts'
import type { ScoredRow, StepResult } from './policy-port.ts'
import {
  bradleyTerryLoss,
  type OpenRewardModel,
  type PairRows,
  type RewardModelPort,
} from './reward-model.ts'

const HEAD = 'score.weight'
const LAST = 'reward.last_token'
const TARGET_FEEDS: readonly string[] = [INPUT.targetIds, INPUT.targetPositions, INPUT.targetSequences]

/** Rewards (rows) of a decoder graph in g: hidden state at each row's last token, times the head. */
function rewardsOf(g: Graph, loaded: LoadedModel, rows: Dim) {
  const cfg = loaded.config
  const { ctx, params } = bindModel(g, { cfg, weights: loaded.weights }, { trainable: 'all' })
  const inputs = declareDecoderInputs(g, cfg, 'float32', { rows, seq: 'seq', keys: 'seq' })
  const last = g.input(LAST, 'float32', [rows, 'seq'])
  const head = g.input(HEAD, 'float32', [1, cfg.hidden_size])
  const { hidden } = llamaModel(ctx, inputs) // (B, T, H)
  const pooled = reduceSum(g, mul(g, hidden, unsqueeze(g, last, { axes: [2] })), { axes: [1] }) // (B, H)
  const rewards = squeeze(g, matMul(g, pooled, transpose(g, head, { perm: [1, 0] })), { axes: [1] }) // (B)
  return { rewards, params: new Map<string, Tensor>([...params, [HEAD, head]]) }
}

class ModelRewardModel implements RewardModelPort {
  private readonly optimizer: HostAdamW
  private forward?: Promise<GraphSession>
  private readonly steps = new Map<number, Promise<GraphSession>>()
  private step = 0

  constructor(
    readonly device: Provider,
    private readonly loaded: LoadedModel,
    head: Float32Array,
    private readonly maxPromptTokens: number,
    private readonly maxGradNorm: number,
    adamw: ConstructorParameters<typeof HostAdamW>[1],
  ) {
    const tensors = new Map(
      [...loaded.weights].map(([k, t]) => [
        k,
        { shape: t.shape, data: Float32Array.from(t.data) as Float32Array },
      ]),
    )
    tensors.set(HEAD, { shape: [1, loaded.config.hidden_size], data: head })
    this.optimizer = new HostAdamW(
      [...tensors].map(([name, t]) => ({ name, shape: t.shape, decay: t.shape.length > 1 })),
      adamw,
    )
    for (const [name, t] of tensors)
      this.optimizer.load(name, { dtype: 'float32', dims: t.shape, data: t.data })
  }

  private tokenRow(row: ScoredRow): TokenRow {
    const template = this.loaded.chatTemplate
    if (!template) throw new ValidationError(`the model in ${this.loaded.dir} has no chat template`)
    const messages = chatMessages(row.prompt)
    const head = template.render(messages, { addGenerationPrompt: true })
    const full = template.render([...messages, { role: 'assistant', content: row.response }], {
      addGenerationPrompt: false,
    })
    const prompt = this.loaded.tokenizer.encode(head).slice(-this.maxPromptTokens)
    const response = this.loaded.tokenizer.encode(
      full.startsWith(head) ? full.slice(head.length) : row.response,
    )
    return { prompt, response }
  }

  /** Decoder feeds plus the one-hot of each row's last real token. */
  private feeds(rows: TokenRow[]): { feeds: Record<string, HostTensor>; tokens: number } {
    const padId = this.loaded.tokenizer.padTokenId ?? this.loaded.config.pad_token_id ?? 0
    const batch = packRows(rows, { padding: 'right', padId })
    const all = scoringFeeds(this.loaded.config, batch, 'float32')
    const feeds: Record<string, HostTensor> = Object.fromEntries(
      Object.entries(all).filter(([k]) => !TARGET_FEEDS.includes(k)),
    )
    const last = new Float32Array(batch.rows * batch.seq)
    rows.forEach((r, b) => {
      last[b * batch.seq + r.prompt.length + r.response.length - 1] = 1
    })
    feeds[LAST] = { dtype: 'float32', dims: [batch.rows, batch.seq], data: last }
    for (const name of [...this.loaded.weights.keys(), HEAD]) feeds[name] = this.optimizer.param(name)
    return { feeds, tokens: batch.mask.reduce((a, m) => a + m, 0) }
  }

  /** A graph for this model's provider (WebGPU has no FusedMatMul kernel). */
  private graph(name: string): Graph {
    return new Graph({ name, fusedMatMul: this.device !== 'webgpu' })
  }

  private open(g: Graph, name: string): Promise<GraphSession> {
    return createGraphSession(g.serialize(), { provider: this.device, name })
  }

  async rewards(rows: ScoredRow[]): Promise<number[]> {
    if (!this.forward) {
      const g = this.graph('reward')
      const { rewards } = rewardsOf(g, this.loaded, 'batch')
      g.output(rewards, 'rewards')
      this.forward = this.open(g, 'reward')
    }
    const session = await this.forward
    const out = await session.run(this.feeds(rows.map((r) => this.tokenRow(r))).feeds, ['rewards'])
    return Array.from(out.rewards.data as Float32Array)
  }

  async trainStep(pairs: PairRows[], lr: number): Promise<StepResult> {
    const n = pairs.length
    let pending = this.steps.get(n)
    if (!pending) {
      const g = this.graph(`reward.step.${n}`)
      const { rewards, params } = rewardsOf(g, this.loaded, 2 * n)
      const [chosen, rejected] = split(g, rewards, { axis: 0, sizes: [n, n] })
      const { metrics } = bradleyTerryLoss(g, chosen, rejected)
      const { loss, ...rest } = metrics
      const spec = [...params].map(([name, tensor]) => ({ name, tensor, decay: tensor.shape.length > 1 }))
      pending = this.open(
        buildGradStep(g, {
          loss,
          params: spec,
          metrics: rest,
          gradientDtype: this.optimizer.gradDtype,
        }).graph,
        `reward.step.${n}`,
      )
      this.steps.set(n, pending)
    }
    const session = await pending
    const rows = [
      ...pairs.map((p) => this.tokenRow(p.chosen)),
      ...pairs.map((p) => this.tokenRow(p.rejected)),
    ]
    const { feeds, tokens } = this.feeds(rows)
    const out = await session.run(feeds)
    for (const name of [...this.loaded.weights.keys(), HEAD])
      this.optimizer.setGrad(name, out[gradName(name)], false, gradScaleOf(out, name))
    const gradNorm = this.optimizer.gradNorm()
    const clip = this.maxGradNorm > 0 ? Math.min(1, this.maxGradNorm / (gradNorm + 1e-6)) : 1
    this.step += 1
    this.optimizer.step({ step: this.step, lr }, clip)
    const metrics: Record<string, number> = {}
    for (const [name, t] of Object.entries(out)) {
      if (!isGradientOutput(name) && t.data.length === 1) metrics[name] = Number(t.data[0])
    }
    return { metrics, gradNorm, tokens }
  }

  /** Decoder weights and the head in one model.safetensors, with the base model's config and tokenizer. */
  async exportModel(dir: string): Promise<void> {
    const weights = new Map(
      [...this.loaded.weights.keys(), HEAD].map((k) => {
        const p = this.optimizer.param(k)
        return [k, { shape: [...p.dims], data: Float32Array.from(p.data as Float32Array) }]
      }),
    )
    await saveFullModel(dir, { dir: this.loaded.dir, weights })
  }

  async dispose(): Promise<void> {
    const all = [this.forward, ...this.steps.values()].filter((s) => s !== undefined)
    for (const s of all) await (await s).release()
  }
}

/** Opens a model folder as a reward model with a freshly initialised head (normal, std 1/sqrt(H)). */
export const openModelRewardModel: OpenRewardModel = async (o) => {
  const loaded = await loadModel(o.modelDir)
  const h = loaded.config.hidden_size
  const rng = new Random(o.seed)
  const head = Float32Array.from({ length: h }, () => rng.normal() / Math.sqrt(h))
  const provider = await resolveProvider(o.device)
  return new ModelRewardModel(provider, loaded, head, o.maxPromptTokens, o.optimizer.maxGradNorm, {
    beta1: o.optimizer.betas[0],
    beta2: o.optimizer.betas[1],
    eps: o.optimizer.eps,
    weightDecay: o.optimizer.weightDecay,
    stateDtype: o.optimizerStateDtype,
    gradDtype: o.gradientDtype,
  })
}
