/**
 * The `rm` method: a Bradley-Terry reward model (a scalar head on the last token of the sequence)
 * trained on preference pairs, with pairwise accuracy reported on a held-out split.
 */
import { cast, type Graph, greater, reduceMean, softplus, sub, type Tensor } from '../engine/index.ts'
import { type LrSchedule, lrAt } from '../engine/optim/index.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import type { OpenModelOptions, ScoredRow, StepResult } from './policy-port.ts'
import type { PreferencePair } from './records.ts'
import type { Rng } from './rng.ts'
import type { ControlSignal } from './trainer-interface.ts'

/** Per-pair Bradley-Terry loss -log sigmoid(r(chosen) - r(rejected)) of shape (N), with metrics. */
export function bradleyTerryLoss(g: Graph, chosen: Tensor, rejected: Tensor) {
  const margin = sub(g, chosen, rejected)
  const perPair = softplus(g, sub(g, g.constant(0, margin.dtype), margin))
  const mean = (t: Tensor) => reduceMean(g, t, { axes: [0] })
  return {
    perPair,
    metrics: {
      loss: mean(perPair),
      'rewards/chosen': mean(chosen),
      'rewards/rejected': mean(rejected),
      'rewards/margins': mean(margin),
      'rewards/accuracies': mean(cast(g, greater(g, chosen, rejected), { to: margin.dtype })),
    },
  }
}

export interface PairRows {
  chosen: ScoredRow
  rejected: ScoredRow
}

/** What the trainer needs from a reward model (the model layer supplies it through its adapter). */
export interface RewardModelPort {
  rewards(rows: ScoredRow[]): Promise<number[]>
  /** One optimizer step of `bradleyTerryLoss` over the pairs. */
  trainStep(pairs: PairRows[], lr: number): Promise<StepResult>
  exportModel(dir: string): Promise<void>
  readonly device: string
  dispose(): Promise<void>
}

/** Opens a reward model for a job. */
export type OpenRewardModel = (options: OpenModelOptions) => Promise<RewardModelPort>

const toRows = (p: PreferencePair): PairRows => {
  const prompt = { user: p.prompt, system: p.system || undefined }
  return { chosen: { prompt, response: p.chosen }, rejected: { prompt, response: p.rejected } }
}

/** Fraction of pairs the model ranks correctly. */
export async function pairwiseAccuracy(
  model: RewardModelPort,
  pairs: PairRows[],
  batchSize: number,
): Promise<number> {
  let correct = 0
  for (let i = 0; i < pairs.length; i += batchSize) {
    const batch = pairs.slice(i, i + batchSize)
    const rc = await model.rewards(batch.map((p) => p.chosen))
    const rr = await model.rewards(batch.map((p) => p.rejected))
    correct += rc.filter((r, j) => r > rr[j]).length
  }
  return pairs.length === 0 ? Number.NaN : correct / pairs.length
}

/** Splits off `fraction` of the pairs (at least one when there are two or more) for evaluation. */
export function splitHeldOut<T>(
  items: readonly T[],
  fraction: number,
  rng: Rng,
): { train: T[]; heldOut: T[] } {
  const shuffled = rng.shuffle(items)
  const n = items.length >= 2 && fraction > 0 ? Math.max(1, Math.round(items.length * fraction)) : 0
  return { heldOut: shuffled.slice(0, n), train: shuffled.slice(n) }
}

export interface RewardTrainingHooks {
  control(): ControlSignal
  afterStep(values: Record<string, number>): Promise<void>
  evaluated(epoch: number, accuracy: number): void
}

/** Trains for `epochs` over the training split, evaluating held-out pairwise accuracy after each epoch. */
export async function trainRewardModel(
  model: RewardModelPort,
  pairs: PreferencePair[],
  hp: Hyperparameters,
  rng: Rng,
  hooks: RewardTrainingHooks,
): Promise<ControlSignal> {
  const { train, heldOut } = splitHeldOut(pairs.map(toRows), hp.eval_fraction, rng)
  const perStep = hp.batch_size
  const stepsPerEpoch = Math.ceil(train.length / perStep)
  const totalSteps = Math.max(1, stepsPerEpoch * hp.epochs)
  const schedule: LrSchedule =
    hp.schedule === 'constant'
      ? { kind: 'constant', lr: hp.lr, totalSteps, warmupRatio: hp.warmup_ratio }
      : { kind: hp.schedule, lr: hp.lr, totalSteps, warmupRatio: hp.warmup_ratio }
  let step = 0
  for (let epoch = 1; epoch <= hp.epochs; epoch++) {
    const order = rng.shuffle(train)
    for (let i = 0; i < order.length; i += perStep) {
      const signal = hooks.control()
      if (signal !== 'continue') return signal
      const lr = lrAt(schedule, step++)
      const result = await model.trainStep(order.slice(i, i + perStep), lr)
      await hooks.afterStep({ ...result.metrics, learning_rate: lr, grad_norm: result.gradNorm })
    }
    if (heldOut.length > 0)
      hooks.evaluated(epoch, await pairwiseAccuracy(model, heldOut, hp.generation_batch_size))
  }
  return 'continue'
}
