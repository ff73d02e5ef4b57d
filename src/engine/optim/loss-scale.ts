/**
 * Loss scaling for float16 compute, as PyTorch's GradScaler: the loss is multiplied by the scale
 * before the backward pass so that small gradients do not underflow float16; a step whose
 * gradients overflowed (a non-finite norm) is skipped and the scale backs off; after
 * `growthInterval` applied steps in a row the scale grows.
 */
export interface LossScaleConfig {
  /** The first scale (PyTorch's default 2^16). */
  initial?: number
  /** false: the scale stays at `initial` (overflowing steps are still skipped). */
  dynamic?: boolean
  growthFactor?: number
  backoffFactor?: number
  growthInterval?: number
}

export class LossScaler {
  private readonly config: Required<LossScaleConfig>
  scale: number
  /** Steps skipped so far (the optimizer's own step count lags the caller's by this many). */
  skipped = 0
  private applied = 0

  constructor(config: LossScaleConfig = {}) {
    this.config = {
      initial: 2 ** 16,
      dynamic: true,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 2000,
      ...config,
    }
    this.scale = this.config.initial
  }

  /** The optimizer starts counting again with the caller (restored or fresh moments). */
  restartCount(): void {
    this.skipped = 0
  }

  /** Records the outcome of a step from its gradient norm; returns whether the step was applied. */
  update(gradNorm: number): boolean {
    const { dynamic, growthFactor, backoffFactor, growthInterval } = this.config
    if (!Number.isFinite(gradNorm)) {
      this.skipped += 1
      this.applied = 0
      if (dynamic) this.scale *= backoffFactor
      return false
    }
    this.applied += 1
    if (dynamic && this.applied >= growthInterval) {
      this.scale *= growthFactor
      this.applied = 0
    }
    return true
  }
}
