/**
 * A one-line terminal progress bar for training: step/total, loss, speed and ETA. Shared by
 * `sso runs watch` (fed from the WebSocket stream) and `sso train` (fed from the trainer's callbacks).
 * On a terminal it redraws in place; otherwise it prints at most one line per second.
 */

export interface ProgressState {
  step: number
  totalSteps?: number
  loss?: number
  phase?: string
  iteration?: number
  status?: string
}

interface Sample {
  time: number
  step: number
}

/** Seconds → `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

export function formatLoss(loss: number): string {
  return Math.abs(loss) >= 1e-3 && Math.abs(loss) < 1e4 ? loss.toFixed(4) : loss.toExponential(3)
}

/** The bar's text for a state and a measured speed (steps per second); pure, so tests can read it. */
export function formatProgress(state: ProgressState, stepsPerSecond: number | undefined, width = 24): string {
  const parts: string[] = []
  if (state.totalSteps && state.totalSteps > 0) {
    const fraction = Math.min(1, Math.max(0, state.step / state.totalSteps))
    const filled = Math.round(fraction * width)
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`)
    parts.push(`step ${state.step}/${state.totalSteps} ${Math.floor(fraction * 100)}%`)
  } else {
    parts.push(`step ${state.step}`)
  }
  if (state.loss !== undefined) parts.push(`loss ${formatLoss(state.loss)}`)
  if (stepsPerSecond !== undefined && stepsPerSecond > 0) {
    parts.push(`${stepsPerSecond >= 1 ? stepsPerSecond.toFixed(1) : stepsPerSecond.toFixed(2)} steps/s`)
    if (state.totalSteps)
      parts.push(`ETA ${formatDuration((state.totalSteps - state.step) / stepsPerSecond)}`)
  } else if (state.totalSteps) {
    parts.push('ETA ?')
  }
  const where = [
    state.status,
    state.phase,
    state.iteration !== undefined ? `iteration ${state.iteration}` : '',
  ]
    .filter(Boolean)
    .join(' ')
  if (where) parts.push(where)
  return parts.join('  ')
}

export interface Writable {
  write(text: string): unknown
}

export class ProgressBar {
  private state: ProgressState = { step: 0 }
  /** Recent (time, step) points; speed is measured over this window so the ETA follows the current pace. */
  private samples: Sample[] = []
  private lastDraw = 0
  private drawn = ''

  constructor(
    private readonly out: Writable,
    private readonly options: { interactive: boolean; now?: () => number; windowSize?: number },
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)()
  }

  stepsPerSecond(): number | undefined {
    if (this.samples.length < 2) return undefined
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    const seconds = (last.time - first.time) / 1000
    return seconds > 0 ? (last.step - first.step) / seconds : undefined
  }

  /** Merges the defined fields of `patch` into the state and redraws (throttled). */
  update(patch: Partial<ProgressState>): void {
    const previousStep = this.state.step
    const defined = Object.entries(patch).filter(([, v]) => v !== undefined)
    this.state = { ...this.state, ...Object.fromEntries(defined) }
    if (patch.step !== undefined && patch.step !== previousStep) {
      this.samples.push({ time: this.now(), step: patch.step })
      if (this.samples.length > (this.options.windowSize ?? 20)) this.samples.shift()
    }
    this.draw(false)
  }

  text(): string {
    return formatProgress(this.state, this.stepsPerSecond())
  }

  private draw(force: boolean): void {
    const now = this.now()
    const interval = this.options.interactive ? 100 : 1000
    if (!force && now - this.lastDraw < interval) return
    const text = this.text()
    if (text === this.drawn && !force) return
    this.lastDraw = now
    this.drawn = text
    this.out.write(this.options.interactive ? `\r${text}\x1b[K` : `${text}\n`)
  }

  /** Draws the final state and ends the line; later output starts on a fresh line. */
  finish(message?: string): void {
    this.draw(true)
    if (this.options.interactive) this.out.write('\n')
    if (message) this.out.write(`${message}\n`)
  }

  /** Prints a line above the bar (events) without breaking it. */
  log(line: string): void {
    if (this.options.interactive) {
      this.out.write(`\r\x1b[K${line}\n`)
      this.draw(true)
    } else {
      this.out.write(`${line}\n`)
    }
  }
}
