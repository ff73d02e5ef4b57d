/**
 * A one-line terminal progress bar for training: the current phase's progress (generating, scoring,
 * training) with its speed and ETA, plus the global step, iteration and last loss. Shared by
 * `sso runs watch` (fed from the WebSocket stream) and `sso train` (fed from the trainer's callbacks).
 * On a terminal it redraws in place; otherwise it prints at most one line per second.
 */

export interface ProgressState {
  /** Global optimizer step. */
  step: number
  loss?: number
  phase?: string
  /** Units of the current phase done and in total (training steps, generated batches, ...). */
  done?: number
  total?: number
  iteration?: number
  iterations?: number
  status?: string
}

interface Sample {
  time: number
  done: number
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

/** The bar's text for a state and the measured speed of the phase (units per second); pure. */
export function formatProgress(state: ProgressState, perSecond: number | undefined, width = 24): string {
  const parts: string[] = []
  const { done, total } = state
  if (done !== undefined && total !== undefined && total > 0) {
    const fraction = Math.min(1, Math.max(0, done / total))
    const filled = Math.round(fraction * width)
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`)
    parts.push(`${state.phase ?? 'progress'} ${done}/${total} ${Math.floor(fraction * 100)}%`)
  } else if (state.phase) {
    parts.push(state.phase)
  }
  if (state.iteration !== undefined) {
    // A final checkpoint names the next iteration to run (K + 1); show the last one that ran.
    const shown = state.iterations ? Math.min(state.iteration, state.iterations) : state.iteration
    parts.push(`iteration ${shown}${state.iterations ? `/${state.iterations}` : ''}`)
  }
  parts.push(`step ${state.step}`)
  if (state.loss !== undefined) parts.push(`loss ${formatLoss(state.loss)}`)
  if (perSecond !== undefined && perSecond > 0 && done !== undefined && total !== undefined) {
    parts.push(`${perSecond >= 1 ? perSecond.toFixed(1) : perSecond.toFixed(2)}/s`)
    parts.push(`ETA ${formatDuration((total - done) / perSecond)}`)
  }
  if (state.status) parts.push(state.status)
  return parts.join('  ')
}

export interface Writable {
  write(text: string): unknown
}

export class ProgressBar {
  private state: ProgressState = { step: 0 }
  /** Recent (time, done) points of the current phase; the speed follows the current pace. */
  private samples: Sample[] = []
  private lastDraw = Number.NEGATIVE_INFINITY
  private drawn = ''

  constructor(
    private readonly out: Writable,
    private readonly options: { interactive: boolean; now?: () => number; windowSize?: number },
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)()
  }

  perSecond(): number | undefined {
    if (this.samples.length < 2) return undefined
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    const seconds = (last.time - first.time) / 1000
    return seconds > 0 ? (last.done - first.done) / seconds : undefined
  }

  /** Merges the defined fields of `patch` into the state and redraws (throttled). */
  update(patch: Partial<ProgressState>): void {
    const before = this.state
    const defined = Object.entries(patch).filter(([, v]) => v !== undefined)
    this.state = { ...before, ...Object.fromEntries(defined) }
    const phaseChanged = this.state.phase !== before.phase || this.state.iteration !== before.iteration
    // A new phase starts without a count until its first progress report.
    if (phaseChanged && patch.done === undefined)
      this.state = { ...this.state, done: undefined, total: undefined }
    if (phaseChanged || (this.state.done ?? 0) < (before.done ?? 0)) this.samples = []
    if (this.state.done !== undefined && this.state.done !== before.done) {
      this.samples.push({ time: this.now(), done: this.state.done })
      if (this.samples.length > (this.options.windowSize ?? 20)) this.samples.shift()
    }
    this.draw(false)
  }

  text(): string {
    return formatProgress(this.state, this.perSecond())
  }

  private draw(force: boolean): void {
    const now = this.now()
    const interval = this.options.interactive ? 100 : 1000
    if (!force && now - this.lastDraw < interval) return
    const text = this.text()
    // A terminal's forced redraw restores the bar under a log line; a log needs no repeated line.
    if (text === this.drawn && !(force && this.options.interactive)) return
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
