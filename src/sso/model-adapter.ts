/**
 * The thin adapter from the model layer's Policy to the trainer's TrainablePolicy port: chat prompts
 * to token rows, objectives to step-graph losses (rows laid out role-major, reference log-probs as
 * extra inputs).
 */
import { type Graph, resolveProvider, slotName, split, type TransferCounts } from '../engine/index.ts'
import { ValidationError } from '../errors.ts'
import type { PolicyLoss } from '../model/graphs.ts'
import { chatMessages, Policy } from '../model/index.ts'
import type { PolicyOptions, TrainBatch } from '../model/policy.ts'
import {
  type LossHyperparameters,
  type ObjectiveName,
  objectiveRoles,
  type Role,
  sharedPrompts,
} from './loss-types.ts'
import { OBJECTIVES, type SequenceLogps } from './losses.ts'
import type {
  ChatPrompt,
  GenerationTransfers,
  ObjectiveBatch,
  OpenPolicy,
  SamplingOptions,
  ScoredRow,
  SequenceScores,
  StepResult,
  TrainablePolicy,
} from './policy-port.ts'

export const refInput = (role: Role, kind: 'sum' | 'mean') => `ref.${role}.${kind}`

/**
 * The step-graph loss of an objective for micro-batches of `n` examples: rows are [role0 x n, role1 x n,
 * ...], so each role's log-probs are one slice of the (R) outputs. Cached by the model per name.
 */
export function objectiveLoss(objective: ObjectiveName, hp: LossHyperparameters, n: number): PolicyLoss {
  const { roles, refRoles } = objectiveRoles(objective, hp)
  return {
    name: `${objective}.${n}.${JSON.stringify(hp)}`,
    rows: roles.length * n,
    build(g: Graph, logps) {
      const sizes = roles.map(() => n)
      const sums = roles.length > 1 ? split(g, logps.sum, { axis: 0, sizes }) : [logps.sum]
      const means = roles.length > 1 ? split(g, logps.mean, { axis: 0, sizes }) : [logps.mean]
      const policy: Partial<Record<Role, SequenceLogps>> = {}
      roles.forEach((role, i) => {
        policy[role] = { sum: sums[i], mean: means[i] }
      })
      const ref: Partial<Record<Role, SequenceLogps>> = {}
      for (const role of refRoles) {
        ref[role] = {
          sum: g.input(refInput(role, 'sum'), logps.sum.dtype, [n]),
          mean: g.input(refInput(role, 'mean'), logps.sum.dtype, [n]),
        }
      }
      const { metrics } = OBJECTIVES[objective].build(g, { policy, ref }, hp)
      const { loss, ...rest } = metrics
      return { loss, metrics: rest }
    },
  }
}

/** Per-step metrics of the bytes a step moved between host and device (none on the CPU). */
function transferMetrics(provider: string, t: TransferCounts): Record<string, number> {
  if (provider === 'cpu') return {}
  return { 'transfer/host_to_device_bytes': t.hostToDevice, 'transfer/device_to_host_bytes': t.deviceToHost }
}

class ModelPolicy implements TrainablePolicy {
  private readonly generated: GenerationTransfers = { hostToDevice: 0, deviceToHost: 0, tokens: 0 }

  get device(): string {
    return this.policy.provider
  }

  constructor(
    private readonly policy: Policy,
    private readonly lora: boolean,
    private readonly maxPromptTokens: number,
    private readonly maxGradNorm: number,
  ) {}

  private tokenRow(row: ScoredRow) {
    const tokens = this.policy.tokenizeExchange(chatMessages(row.prompt), row.response)
    // keep the end of an over-long prompt: the generation prompt and the user turn
    const prompt =
      tokens.prompt.length > this.maxPromptTokens ? tokens.prompt.slice(-this.maxPromptTokens) : tokens.prompt
    return { prompt, response: tokens.response }
  }

  async generate(prompts: ChatPrompt[], options: SamplingOptions): Promise<string[]> {
    const out = await this.policy.generate(
      prompts.map((p) => chatMessages(p)),
      options,
    )
    const last = this.policy.lastGeneration
    if (last) {
      for (const run of last.runs) {
        this.generated.hostToDevice += run.hostToDevice
        this.generated.deviceToHost += run.deviceToHost
      }
      this.generated.tokens += last.tokens
    }
    return out.map((g) => g.text)
  }

  generationTransfers(): GenerationTransfers {
    return { ...this.generated }
  }

  score(rows: ScoredRow[], which: 'policy' | 'reference'): Promise<SequenceScores> {
    return this.policy.logprobs(
      rows.map((r) => this.tokenRow(r)),
      which,
    )
  }

  freezeReference(): Promise<void> {
    return this.policy.freezeReference()
  }

  releaseReference(): Promise<void> {
    return this.policy.releaseReference()
  }

  async trainStep(
    objective: ObjectiveName,
    hp: LossHyperparameters,
    microBatches: ObjectiveBatch[],
    lr: number,
  ): Promise<StepResult> {
    const { roles, refRoles } = objectiveRoles(objective, hp)
    // an example's sequences on one context (x, x+ or x-) share its prompt in one packed row
    const { branches: maxBranches } = sharedPrompts(roles)
    // the step graph slices rows by role, so its batch axis is static: one size per step
    const bySize = new Map<number, TrainBatch[]>()
    for (const b of microBatches) {
      const n = b.rows[roles[0]]!.length
      const feeds: TrainBatch['feeds'] = Object.fromEntries(
        refRoles.flatMap((role) =>
          (['sum', 'mean'] as const).map((kind) => [
            refInput(role, kind),
            { dtype: 'float32' as const, dims: [n], data: Float32Array.from(b.ref[role]![kind]) },
          ]),
        ),
      )
      const rows = roles.flatMap((role) => b.rows[role]!.map((r) => this.tokenRow(r)))
      bySize.set(n, [...(bySize.get(n) ?? []), { rows, feeds, maxBranches }])
    }
    if (bySize.size > 1) {
      throw new ValidationError(
        `micro-batches of one step must have one size (got ${[...bySize.keys()].join(', ')}): the step graph is static`,
      )
    }
    const [[n, batches]] = [...bySize]
    const result = await this.policy.trainStep(batches, {
      lr,
      loss: objectiveLoss(objective, hp, n),
      maxGradNorm: this.maxGradNorm,
    })
    return {
      metrics: {
        loss: result.loss,
        ...result.metrics,
        ...transferMetrics(this.policy.provider, result.transfers),
      },
      gradNorm: result.gradNorm,
      tokens: result.tokens,
    }
  }

  /** Through the policy's own state: the same state without its moments, at step 0. */
  async resetOptimizer(): Promise<void> {
    const state = await this.policy.exportState()
    for (const name of [...state.tensors.keys()]) {
      state.tensors.delete(slotName('exp_avg', name))
      state.tensors.delete(slotName('exp_avg_sq', name))
    }
    await this.policy.importState({ ...state, step: 0 })
  }

  async fork(): Promise<TrainablePolicy> {
    const copy = await this.policy.fork()
    return new ModelPolicy(copy, this.lora, this.maxPromptTokens, this.maxGradNorm)
  }

  async save(dir: string): Promise<{ kind: 'full' | 'lora'; bytes: number }> {
    return { kind: this.lora ? 'lora' : 'full', bytes: await this.policy.saveState(dir) }
  }

  load(dir: string): Promise<void> {
    return this.policy.loadState(dir)
  }

  async exportModel(dir: string): Promise<void> {
    await this.policy.saveFull(dir)
  }

  dispose(): Promise<void> {
    return this.policy.dispose()
  }
}

/** Opens a model folder as a trainable policy on the requested device (full fine-tuning or LoRA). */
export const openModelPolicy: OpenPolicy = async (o) => {
  const options: PolicyOptions = {
    provider: await resolveProvider(o.device),
    seed: o.seed,
    intraOpThreads: o.deterministic ? 1 : undefined,
    lora: o.finetuning === 'lora' ? o.lora : undefined,
    checkpoint: o.checkpoint,
    weightsDtype: o.weightsDtype,
    precision: o.precision,
    adamw: {
      stateDtype: o.optimizerStateDtype,
      gradDtype: o.gradientDtype,
      beta1: o.optimizer.betas[0],
      beta2: o.optimizer.betas[1],
      eps: o.optimizer.eps,
      weightDecay: o.optimizer.weightDecay,
    },
  }
  const policy = await Policy.load(o.modelDir, options)
  return new ModelPolicy(policy, options.lora !== undefined, o.maxPromptTokens, o.optimizer.maxGradNorm)
}
