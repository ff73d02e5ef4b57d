/**
 * One training phase: a fixed list of examples (rows per role plus reference log-probs), an example
 * order covering all epochs, and a learning-rate schedule; it runs optimizer steps from any position so
 * a resumed phase continues exactly where it stopped.
 */
import { type LrSchedule, lrAt } from '../engine/optim/index.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import { type LossHyperparameters, type ObjectiveName, objectiveRoles, type Role } from './loss-types.ts'
import type { ObjectiveBatch, ScoredRow, TrainablePolicy } from './policy-port.ts'
import type { SsoRecord } from './records.ts'
import type { Rng } from './rng.ts'
import type { ControlSignal } from './trainer-interface.ts'

export interface Example {
  rows: Partial<Record<Role, ScoredRow>>
  ref: Partial<Record<Role, { sum: number; mean: number; count: number }>>
}

export interface PhaseData {
  name: string
  iteration: number
  objective: ObjectiveName
  loss: LossHyperparameters
  examples: Example[]
  /** Example indices in training order, all epochs concatenated. */
  order: number[]
  schedule: LrSchedule
  /** Records behind the examples (online methods), kept for what follows the phase. */
  records?: SsoRecord[]
}

export function lossHyperparameters(hp: Hyperparameters): LossHyperparameters {
  return {
    loss_type: hp.loss_type,
    beta: hp.beta,
    theta_g: hp.theta_g,
    alpha: hp.alpha,
    use_w: hp.use_w,
    use_g: hp.use_g,
    combination: hp.combination,
    sft_gamma: hp.sft_gamma,
    generator_loss_type: hp.generator_loss_type,
    generator_beta: hp.generator_beta,
    generator_sft_gamma: hp.generator_sft_gamma,
  }
}

/** Steps of a phase: examples per optimizer step = batch_size * grad_accum. */
export const phaseSteps = (data: PhaseData, hp: Hyperparameters): number =>
  Math.ceil(data.order.length / (hp.batch_size * hp.grad_accum))

/** A phase over `examples`, shuffled per epoch, with the run's schedule stretched over its steps. */
export function makePhase(
  name: string,
  iteration: number,
  objective: ObjectiveName,
  examples: Example[],
  hp: Hyperparameters,
  rng: Rng,
  records?: SsoRecord[],
  loss: LossHyperparameters = lossHyperparameters(hp),
): PhaseData {
  const indices = examples.map((_, i) => i)
  const order: number[] = []
  for (let e = 0; e < hp.epochs; e++) order.push(...rng.shuffle(indices))
  const totalSteps = Math.max(1, Math.ceil(order.length / (hp.batch_size * hp.grad_accum)))
  const schedule: LrSchedule =
    hp.schedule === 'constant'
      ? { kind: 'constant', lr: hp.lr, totalSteps, warmupRatio: hp.warmup_ratio }
      : { kind: hp.schedule, lr: hp.lr, totalSteps, warmupRatio: hp.warmup_ratio }
  return { name, iteration, objective, loss, examples, order, schedule, records }
}

function toBatch(examples: Example[], objective: ObjectiveName, loss: LossHyperparameters): ObjectiveBatch {
  const obj = objectiveRoles(objective, loss)
  const batch: ObjectiveBatch = { rows: {}, ref: {} }
  for (const role of obj.roles) batch.rows[role] = examples.map((e) => e.rows[role]!)
  for (const role of obj.refRoles) {
    batch.ref[role] = {
      sum: examples.map((e) => e.ref[role]!.sum),
      mean: examples.map((e) => e.ref[role]!.mean),
    }
  }
  return batch
}

export interface PhaseHooks {
  control(): ControlSignal
  /** Called after each optimizer step with its metrics; returns when the step is recorded. */
  afterStep(stepsDone: number, values: Record<string, number>): Promise<void>
}

/**
 * Examples per forward/backward pass for groups of `group` examples: the largest divisor of the group
 * not above `limit`, so the group splits into equal micro-batches ('auto' left unresolved: the group).
 */
export function microBatchSize(group: number, limit: number | 'auto'): number {
  if (limit === 'auto' || limit >= group) return group
  let size = limit
  while (group % size !== 0) size--
  return size
}

/** Runs the phase from `stepsDone`; returns 'continue' when finished, or the control signal that stopped it. */
export async function runPhase(
  model: TrainablePolicy,
  data: PhaseData,
  hp: Hyperparameters,
  stepsDone: number,
  hooks: PhaseHooks,
): Promise<ControlSignal> {
  const perStep = hp.batch_size * hp.grad_accum
  const total = phaseSteps(data, hp)
  for (let step = stepsDone; step < total; step++) {
    const signal = hooks.control()
    if (signal !== 'continue') return signal
    const chosen = data.order.slice(step * perStep, (step + 1) * perStep).map((i) => data.examples[i])
    // a short last step is one group; every micro-batch of a step has the same size (a static graph)
    const size = microBatchSize(chosen.length < perStep ? chosen.length : hp.batch_size, hp.micro_batch_size)
    const micro: ObjectiveBatch[] = []
    for (let i = 0; i < chosen.length; i += size)
      micro.push(toBatch(chosen.slice(i, i + size), data.objective, data.loss))
    const lr = lrAt(data.schedule, step)
    const started = performance.now()
    const result = await model.trainStep(data.objective, data.loss, micro, lr)
    const seconds = (performance.now() - started) / 1000
    const values: Record<string, number> = {
      ...result.metrics,
      learning_rate: lr,
      grad_norm: result.gradNorm,
      tokens_per_second: result.tokens / seconds,
      ...responseLengths(chosen),
    }
    await hooks.afterStep(step + 1, values)
  }
  return 'continue'
}

/** Mean response lengths in tokens of the step's examples, from the counts recorded at scoring time. */
function responseLengths(examples: Example[]): Record<string, number> {
  const out: Record<string, number> = {}
  const lengthOf = (role: Role) => {
    const counts = examples.map((e) => e.ref[role]?.count).filter((c) => c !== undefined)
    return counts.length === 0 ? undefined : counts.reduce((a, b) => a + b, 0) / counts.length
  }
  const chosen = lengthOf('plain_chosen') ?? lengthOf('good_chosen')
  const rejected = lengthOf('plain_rejected') ?? lengthOf('good_rejected')
  if (chosen !== undefined) out['lengths/chosen'] = chosen
  if (rejected !== undefined) out['lengths/rejected'] = rejected
  return out
}
