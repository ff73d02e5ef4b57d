import { ValidationError } from '../../errors.ts'

/**
 * Learning-rate schedules computed in TypeScript and fed to the step graph as a scalar input.
 * Warm-up rises linearly from lr/warmup to lr over the first warm-up steps (so the first step is not
 * wasted at lr 0); afterwards `linear` and `cosine` decay from lr to minLr at totalSteps.
 */
export interface WarmUp {
  /** Warm-up length in optimizer steps. */
  warmupSteps?: number
  /** Warm-up length as a fraction of totalSteps (rounded up), as in Hugging Face's TrainingArguments. */
  warmupRatio?: number
}

export type LrSchedule =
  | ({ kind: 'constant'; lr: number; totalSteps?: number } & WarmUp)
  | ({ kind: 'linear' | 'cosine'; lr: number; totalSteps: number; minLr?: number } & WarmUp)

function warmupLength(s: LrSchedule): number {
  if (s.warmupSteps !== undefined && s.warmupRatio !== undefined) {
    throw new ValidationError('give warmupSteps or warmupRatio, not both', s)
  }
  if (s.warmupSteps !== undefined) {
    if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) {
      throw new ValidationError(`warmupSteps must be a non-negative integer, got ${s.warmupSteps}`)
    }
    return s.warmupSteps
  }
  if (s.warmupRatio !== undefined) {
    if (!(s.warmupRatio >= 0 && s.warmupRatio <= 1)) {
      throw new ValidationError(`warmupRatio must be in [0, 1], got ${s.warmupRatio}`)
    }
    if (s.totalSteps === undefined) throw new ValidationError('warmupRatio needs totalSteps')
    return Math.ceil(s.warmupRatio * s.totalSteps)
  }
  return 0
}

/** Checks a schedule once (e.g. when a run is created) so that lrAt cannot fail mid-training. */
export function validateSchedule(s: LrSchedule): void {
  if (!(Number.isFinite(s.lr) && s.lr >= 0))
    throw new ValidationError(`lr must be a finite number >= 0, got ${s.lr}`)
  if (s.totalSteps !== undefined && !(Number.isInteger(s.totalSteps) && s.totalSteps > 0)) {
    throw new ValidationError(`totalSteps must be a positive integer, got ${s.totalSteps}`)
  }
  if (s.kind !== 'constant') {
    const minLr = s.minLr ?? 0
    if (!(minLr >= 0 && minLr <= s.lr))
      throw new ValidationError(`minLr must be in [0, lr=${s.lr}], got ${minLr}`)
  }
  warmupLength(s)
}

/** The learning rate of optimizer step `step` (0-based). */
export function lrAt(s: LrSchedule, step: number): number {
  if (!(Number.isInteger(step) && step >= 0))
    throw new ValidationError(`step must be an integer >= 0, got ${step}`)
  const warmup = warmupLength(s)
  if (step < warmup) return (s.lr * (step + 1)) / warmup
  if (s.kind === 'constant') return s.lr
  const minLr = s.minLr ?? 0
  const progress = Math.min(1, (step - warmup) / Math.max(1, s.totalSteps - warmup))
  const factor = s.kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress))
  return minLr + (s.lr - minLr) * factor
}
