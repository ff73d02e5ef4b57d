/**
 * What every method shares while it runs: the job and its callbacks, parsed hyperparameters, the RNG,
 * the step counter, the models, events and checkpoints.
 */
import { join } from 'node:path'
import { type SavedCheckpoint, type TrainerState, writeCheckpoint } from './checkpoint.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import type { TrainablePolicy } from './policy-port.ts'
import type { Rng, RngState } from './rng.ts'
import type { CheckpointInfo, TrainerCallbacks, TrainerJob, TrainerPhase } from './trainer-interface.ts'
import { type PhaseData, type PhaseHooks, phaseSteps } from './training-phase.ts'

export class RunContext {
  globalStep = 0
  lastCheckpoint: CheckpointInfo | undefined
  generator: TrainablePolicy | undefined
  private lastSaved: SavedCheckpoint | undefined

  constructor(
    readonly job: TrainerJob,
    readonly callbacks: TrainerCallbacks,
    readonly hp: Hyperparameters,
    readonly rng: Rng,
    readonly policy: TrainablePolicy,
  ) {}

  phase(phase: TrainerPhase, message: string, data?: Record<string, unknown>): void {
    this.callbacks.onEvent({ type: 'phase', phase, message, data })
  }

  progress(phase: TrainerPhase, done: number, total: number): void {
    this.callbacks.onEvent({
      type: 'progress',
      phase,
      message: `${phase} ${done}/${total}`,
      data: { done, total },
    })
  }

  iterationMetrics(iteration: number, values: Record<string, number>): void {
    this.callbacks.onMetrics({ step: this.globalStep, iteration, values })
  }

  /** Writes a checkpoint of the current position and reports it. */
  async checkpoint(
    iteration: number,
    stage: TrainerState['stage'],
    rng: RngState,
    phase?: { data: PhaseData; stepsDone: number },
  ): Promise<CheckpointInfo> {
    this.phase('checkpointing', `checkpoint at step ${this.globalStep}`, { step: this.globalStep, iteration })
    const models: Record<string, TrainablePolicy> = { policy: this.policy }
    if (this.generator && stage === 'train') models.generator = this.generator
    const state: TrainerState = {
      version: 1,
      method: this.job.method,
      iteration,
      stage,
      globalStep: this.globalStep,
      rng,
      phase: phase ? { name: phase.data.name, stepsDone: phase.stepsDone } : undefined,
      hasGenerator: models.generator !== undefined,
    }
    this.lastSaved = await writeCheckpoint(
      join(this.job.outputDir, 'checkpoints'),
      state,
      phase?.data,
      models,
    )
    const info: CheckpointInfo = {
      step: this.globalStep,
      iteration,
      dir: this.lastSaved.dir,
      kind: this.lastSaved.kind,
      bytes: this.lastSaved.bytes,
    }
    this.lastCheckpoint = info
    await this.callbacks.onCheckpoint(info)
    return info
  }

  /** Hooks for a phase: metrics per step and checkpoints every `checkpoint_every` global steps. */
  phaseHooks(data: PhaseData): PhaseHooks {
    const total = phaseSteps(data, this.hp)
    return {
      control: () => this.callbacks.control(),
      afterStep: async (stepsDone, values) => {
        this.globalStep++
        this.callbacks.onMetrics({ step: this.globalStep, iteration: data.iteration, values })
        if (stepsDone % this.hp.log_every === 0 || stepsDone === total)
          this.progress('training', stepsDone, total)
        const every = this.hp.checkpoint_every
        if (every > 0 && this.globalStep % every === 0 && stepsDone < total) {
          await this.checkpoint(data.iteration, 'train', this.rng.state(), { data, stepsDone })
        }
      },
    }
  }
}
