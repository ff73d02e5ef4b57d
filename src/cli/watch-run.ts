/**
 * `sso runs watch`: the run's live progress in the terminal, from its WebSocket stream. Metrics frames
 * move the bar (step, loss), other events print above it, and a terminal status ends the watch.
 */
import type { ApiClient } from './api-client.ts'
import { ProgressBar, type ProgressState, type Writable } from './progress-bar.ts'
import { followRun, type StreamFrame } from './run-stream.ts'
import { isTerminal, type RunLike } from './run-summary.ts'

export interface WatchOptions {
  json: boolean
  interactive: boolean
  out: Writable
  signal?: AbortSignal
}

/** Numeric metric values of a metrics frame (`data.values`, or `data` itself). */
export function frameMetrics(frame: StreamFrame): Record<string, number> {
  const source = (frame.data.values ?? frame.data) as Record<string, unknown>
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(source)) if (typeof v === 'number') out[k] = v
  return out
}

/**
 * What a frame changes on the progress bar: metrics frames move the step and loss; progress events
 * (`data: { done, total }`) the phase bar; phase events the phase; status frames the status.
 */
export function progressPatch(frame: StreamFrame): Partial<ProgressState> {
  const d = frame.data
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
  const patch: Partial<ProgressState> = { iteration: num(d.iteration) }
  if (frame.type === 'metrics') {
    patch.step = frame.step
    patch.loss = frameMetrics(frame).loss
  }
  if (typeof d.phase === 'string') patch.phase = d.phase
  if (frame.type === 'progress') {
    patch.done = num(d.done)
    patch.total = num(d.total)
  }
  if (frame.type === 'status' && typeof d.status === 'string') patch.status = d.status
  return patch
}

/** A line for the log above the bar, for frames worth reading (not metrics, not progress ticks). */
export function frameLogLine(frame: StreamFrame): string | undefined {
  if (frame.type === 'metrics' || frame.type === 'progress') return undefined
  const message = typeof frame.data.message === 'string' ? frame.data.message : ''
  if (frame.type === 'status') return `status: ${frame.data.status}${message ? ` (${message})` : ''}`
  return message ? `${frame.type}: ${message}` : undefined
}

export async function watchRun(client: ApiClient, runId: string, options: WatchOptions): Promise<RunLike> {
  const path = `/v1/runs/${encodeURIComponent(runId)}`
  let run = await client.get<RunLike>(path)
  const bar = new ProgressBar(options.out, { interactive: options.interactive })
  const iterations = (run.hyperparameters as { iterations?: number } | undefined)?.iterations
  if (!options.json) bar.update({ step: run.current_step ?? 0, status: run.status, iterations })
  if (!isTerminal(run.status)) {
    // Backfill only from the current step: a long run's whole history is not needed for a progress bar.
    await followRun(client, runId, {
      sinceStep: (run.current_step ?? 0) - 1,
      signal: options.signal,
      onFrame: (frame) => {
        if (options.json) options.out.write(`${JSON.stringify(frame)}\n`)
        else {
          bar.update(progressPatch(frame))
          const line = frameLogLine(frame)
          if (line) bar.log(`  ${line}`)
        }
        return !(frame.type === 'status' && isTerminal(String(frame.data.status)))
      },
    })
    run = await client.get<RunLike>(path)
  }
  if (!options.json) {
    bar.update({ status: run.status, step: run.current_step })
    const error = run.error ? `: ${run.error.code}: ${run.error.message}` : ''
    bar.finish(`run ${run.id} ${run.status}${error}`)
  }
  return run
}
