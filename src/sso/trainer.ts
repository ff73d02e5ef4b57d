/**
 * The trainer behind the worker and the CLI: parses the job, opens the policy, resumes from a
 * checkpoint when asked, and dispatches on the method. Online methods live in iterations.ts; the
 * offline ones (dpo, ipo, sft) train one phase on imported records; rm trains a reward model.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AppError, ValidationError } from '../errors.ts'
import { readModelConfig } from '../model/load.ts'
import { readCheckpoint } from './checkpoint.ts'
import { effectiveHyperparameters, type Hyperparameters } from './hyperparameters.ts'
import { runOnline } from './iterations.ts'
import { planRunMemory } from './memory-plan.ts'
import { openModelPolicy } from './model-adapter.ts'
import type { OpenPolicy } from './policy-port.ts'
import {
  type PreferencePair,
  readDataset,
  recordToPreferencePair,
  type SftPair,
  validateDataset,
} from './records.ts'
import { type OpenRewardModel, trainRewardModel } from './reward-model.ts'
import { openModelRewardModel } from './reward-model-adapter.ts'
import { Rng } from './rng.ts'
import { RunContext } from './run-context.ts'
import { scoreReference } from './scoring.ts'
import type {
  ControlSignal,
  RunTrainer,
  TrainerCallbacks,
  TrainerJob,
  TrainerResult,
  TrainingMethod,
} from './trainer-interface.ts'
import { type Example, makePhase, runPhase } from './training-phase.ts'

/** Preference pairs from files in either the pair format or the SSO record format (per file). */
async function readPreferencePairs(paths: string[]): Promise<PreferencePair[]> {
  const pairs: PreferencePair[] = []
  for (const path of paths) {
    const text = await readFile(path, 'utf8')
    const asRecords = validateDataset('sso_records', text)
    if (asRecords.errors.length === 0 && asRecords.rows.length > 0)
      pairs.push(...asRecords.rows.map(recordToPreferencePair))
    else pairs.push(...(await readDataset('preference_pairs', [path])))
  }
  return pairs
}

const pairExample = (p: PreferencePair): Example => {
  const prompt = { user: p.prompt, system: p.system || undefined }
  return {
    rows: { plain_chosen: { prompt, response: p.chosen }, plain_rejected: { prompt, response: p.rejected } },
    ref: {},
  }
}

const sftExample = (p: SftPair): Example => ({
  rows: { plain_chosen: { prompt: { user: p.prompt, system: p.system || undefined }, response: p.response } },
  ref: {},
})

/** dpo / ipo / sft: one phase over the imported data (epochs from the hyperparameters). */
async function runOffline(
  ctx: RunContext,
  resume?: Awaited<ReturnType<typeof readCheckpoint>>,
): Promise<ControlSignal> {
  const { job, hp } = ctx
  let data = resume?.phaseData
  if (resume?.state.stage === 'done') return 'continue'
  if (!data) {
    ctx.phase('loading', `reading ${job.datasetPaths.length} dataset file(s)`)
    if (job.method === 'sft') {
      const rows = await readDataset('sft_pairs', job.datasetPaths)
      data = makePhase('offline', 1, 'sft', rows.map(sftExample), hp, ctx.rng)
    } else {
      const examples = (await readPreferencePairs(job.datasetPaths)).map(pairExample)
      ctx.phase('scoring', 'reference log-probs')
      await ctx.policy.freezeReference()
      await scoreReference(
        ctx.policy,
        examples,
        ['plain_chosen', 'plain_rejected'],
        hp.generation_batch_size,
        (d, t) => ctx.progress('scoring', d, t),
      )
      data = makePhase('offline', 1, 'preference', examples, hp, ctx.rng)
    }
    if (data.examples.length === 0)
      throw new ValidationError(`the datasets of run ${job.runId} hold no examples`)
  }
  ctx.phase('training', `training ${data.examples.length} examples`)
  let done = resume?.state.phase?.stepsDone ?? 0
  const hooks = ctx.phaseHooks(data)
  const signal = await runPhase(ctx.policy, data, hp, done, {
    control: hooks.control,
    afterStep: async (s, v) => {
      done = s
      await hooks.afterStep(s, v)
    },
  })
  if (signal !== 'continue') {
    await ctx.checkpoint(1, 'train', ctx.rng.state(), { data, stepsDone: done })
    return signal
  }
  await ctx.checkpoint(2, 'done', ctx.rng.state())
  return 'continue'
}

const openOptions = (job: TrainerJob, hp: Hyperparameters) => ({
  modelDir: job.modelDir,
  device: job.device,
  finetuning: hp.finetuning,
  lora: hp.lora,
  optimizer: {
    lr: hp.lr,
    betas: hp.adam_betas,
    eps: hp.adam_eps,
    weightDecay: hp.weight_decay,
    maxGradNorm: hp.max_grad_norm,
  },
  maxPromptTokens: hp.max_prompt_tokens,
  seed: job.seed,
  deterministic: hp.deterministic,
  checkpoint: hp.gradient_checkpointing === true,
  optimizerStateDtype: hp.optimizer_state_dtype,
  gradientDtype: hp.gradient_dtype,
  weightsDtype: hp.weights_dtype,
  precision: hp.precision,
})

/** rm: Bradley-Terry reward model on preference pairs; writes the final model (no mid-run resume). */
async function runRewardModel(
  job: TrainerJob,
  callbacks: TrainerCallbacks,
  hp: Hyperparameters,
  open: OpenRewardModel,
): Promise<TrainerResult> {
  const model = await open(openOptions(job, hp))
  try {
    callbacks.onEvent({
      type: 'phase',
      phase: 'loading',
      message: `reading ${job.datasetPaths.length} dataset file(s)`,
    })
    const pairs = await readPreferencePairs(job.datasetPaths)
    let step = 0
    callbacks.onEvent({
      type: 'phase',
      phase: 'training',
      message: `training a reward model on ${pairs.length} pairs`,
    })
    const signal = await trainRewardModel(model, pairs, hp, Rng.fromSeed(job.seed), {
      control: () => callbacks.control(),
      afterStep: async (values) => callbacks.onMetrics({ step: ++step, values }),
      evaluated: (epoch, accuracy) =>
        callbacks.onMetrics({ step, values: { 'eval/pairwise_accuracy': accuracy, epoch } }),
    })
    const status: TrainerResult['status'] =
      signal === 'cancel' ? 'cancelled' : signal === 'pause' ? 'paused' : 'succeeded'
    if (status === 'succeeded') {
      const dir = join(job.outputDir, 'final')
      await model.exportModel(dir)
      callbacks.onEvent({ type: 'info', message: `final model written to ${dir}`, data: { dir } })
    }
    return { status, finalStep: step, device: model.device }
  } finally {
    await model.dispose()
  }
}

/**
 * Resolves the `auto` memory settings within the run's budget before anything is loaded; a run that
 * cannot fit fails here with its estimate instead of being killed for memory later.
 */
async function fitMemoryBudget(
  job: TrainerJob,
  hp: Hyperparameters,
  budgetBytes: number,
  callbacks: TrainerCallbacks,
): Promise<Hyperparameters> {
  const cfg = await readModelConfig(job.modelDir)
  const plan = planRunMemory(cfg, job.method as Exclude<TrainingMethod, 'rm'>, hp, budgetBytes)
  const mb = (b: number) => Math.round(b / 2 ** 20)
  callbacks.onEvent({
    type: 'info',
    message: `memory plan: micro-batches of ${plan.microBatchSize}, gradient checkpointing ${plan.checkpoint ? 'on' : 'off'}, estimated peak ${mb(plan.estimate.bytes)} MB of a ${mb(budgetBytes)} MB budget`,
    data: {
      micro_batch_size: plan.microBatchSize,
      gradient_checkpointing: plan.checkpoint,
      estimate_bytes: plan.estimate.bytes,
      budget_bytes: budgetBytes,
    },
  })
  return { ...hp, micro_batch_size: plan.microBatchSize, gradient_checkpointing: plan.checkpoint }
}

/** Builds a RunTrainer over ways of opening policies and reward models (the model layer's, through adapters). */
export function createTrainer(openPolicy: OpenPolicy, openRewardModel?: OpenRewardModel): RunTrainer {
  return async (job, callbacks) => {
    let hp = effectiveHyperparameters(job.method, job.hyperparameters)
    if (job.method === 'rm') {
      if (!openRewardModel) {
        throw new AppError('invalid_state', `method 'rm' needs a reward-model backend (run ${job.runId})`)
      }
      return runRewardModel(job, callbacks, hp, openRewardModel)
    }
    callbacks.onEvent({ type: 'phase', phase: 'loading', message: `opening ${job.modelDir}` })
    if (job.memoryBudgetBytes !== undefined)
      hp = await fitMemoryBudget(job, hp, job.memoryBudgetBytes, callbacks)
    const policy = await openPolicy(openOptions(job, hp))
    try {
      const resume = job.resumeFrom ? await readCheckpoint(job.resumeFrom) : undefined
      if (resume && resume.state.method !== job.method) {
        throw new ValidationError(
          `checkpoint ${job.resumeFrom} belongs to a '${resume.state.method}' run, not '${job.method}'`,
        )
      }
      const rng = resume ? Rng.fromState(resume.state.rng) : Rng.fromSeed(job.seed)
      const ctx = new RunContext(job, callbacks, hp, rng, policy)
      if (resume) {
        ctx.globalStep = resume.state.globalStep
        await policy.load(resume.modelDir('policy'))
        if (resume.state.hasGenerator) {
          ctx.generator = await policy.fork()
          await ctx.generator.load(resume.modelDir('generator'))
        }
        callbacks.onEvent({
          type: 'info',
          message: `resumed from ${job.resumeFrom} at step ${resume.state.globalStep}`,
          data: { step: resume.state.globalStep, iteration: resume.state.iteration },
        })
      }
      const online = job.method === 'sso' || job.method === 'pbaa' || job.method === 'sso_v2'
      let signal: ControlSignal
      if (online) {
        if (resume?.state.stage === 'done') signal = 'continue'
        else {
          const queries = await readDataset('queries', job.datasetPaths)
          if (queries.length === 0) {
            throw new ValidationError(
              `run ${job.runId} (${job.method}) has no queries: give it a dataset of queries (dataset_ids)`,
            )
          }
          signal = await runOnline(ctx, queries, resume)
        }
      } else {
        signal = await runOffline(ctx, resume)
      }
      const status: TrainerResult['status'] =
        signal === 'cancel' ? 'cancelled' : signal === 'pause' ? 'paused' : 'succeeded'
      if (status === 'succeeded') {
        const dir = join(job.outputDir, 'final')
        await policy.exportModel(dir)
        callbacks.onEvent({ type: 'info', message: `final model written to ${dir}`, data: { dir } })
      }
      return { status, finalStep: ctx.globalStep, lastCheckpoint: ctx.lastCheckpoint, device: policy.device }
    } finally {
      await policy.dispose()
    }
  }
}

/** The trainer on the model layer's policies: what the worker and the CLI run. */
export const runTrainer: RunTrainer = createTrainer(openModelPolicy, openModelRewardModel)
