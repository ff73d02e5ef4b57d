/**
 * `sso runs watch`: the run's live progress in the terminal, from its WebSocket stream. Metrics frames
 * move the bar (step, loss), events print above it, and a terminal status ends the watch.
 */
import type { ApiClient } from './api-client.ts'
import { ProgressBar, type Writable } from './progress-bar.ts'
import { followRun, frameStep, type StreamFrame } from './run-stream.ts'
import { isTerminal, type RunLike, runProgress } from './run-summary.ts'

export interface WatchOptions {
  json: boolean
  interactive: boolean
  out: Writable
  signal?: AbortSignal
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {}
}

/** Metric values of a frame: `{ values: { loss: 0.69 } }` or a list of `{ key, value }` rows. */
export function frameMetrics(frame: StreamFrame): Record<string, number> {
  const data = record(frame.data)
  const values = record(frame.values ?? data.values)
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(values)) if (typeof v === 'number') out[k] = v
  const rows = frame.metrics ?? data.metrics
  if (Array.isArray(rows)) {
    for (const r of rows) {
      const row = record(r)
      if (typeof row.key === 'string' && typeof row.value === 'number') out[row.key] = row.value
    }
  }
  return out
}

export function frameStatus(frame: StreamFrame): string | undefined {
  const status = frame.status ?? record(frame.data).status ?? record(frame.run).status
  return typeof status === 'string' ? status : undefined
}

export async function watchRun(client: ApiClient, runId: string, options: WatchOptions): Promise<RunLike> {
  let run = await client.get<RunLike>(`/v1/runs/${encodeURIComponent(runId)}`)
  const { step, totalSteps } = runProgress(run)
  const bar = new ProgressBar(options.out, { interactive: options.interactive })
  if (!options.json) bar.update({ step: step ?? 0, totalSteps, status: run.status })
  if (isTerminal(run.status)) {
    if (!options.json) bar.finish(`run ${run.id} ${run.status}`)
    return run
  }
  await followRun(client, runId, {
    sinceStep: step ?? 0,
    signal: options.signal,
    onFrame: (frame) => {
      if (options.json) options.out.write(`${JSON.stringify(frame)}\n`)
      const status = frameStatus(frame)
      const metrics = frameMetrics(frame)
      const frameTotal = record(frame.data).total_steps ?? frame.total_steps
      if (!options.json) {
        const s = frameStep(frame)
        if (s !== undefined || metrics.loss !== undefined || status) {
          bar.update({
            ...(s !== undefined ? { step: s } : {}),
            ...(metrics.loss !== undefined ? { loss: metrics.loss } : {}),
            ...(typeof frameTotal === 'number' ? { totalSteps: frameTotal } : {}),
            ...(status ? { status } : {}),
          })
        }
        if (frame.type === 'event') {
          const event = record(frame.event ?? frame.data)
          const message = event.message ?? frame.message
          if (typeof event.phase === 'string') bar.update({ phase: event.phase })
          if (typeof message === 'string' && event.type !== 'progress') bar.log(`  ${message}`)
        }
      }
      return status === undefined || !isTerminal(status)
    },
  })
  run = await client.get<RunLike>(`/v1/runs/${encodeURIComponent(runId)}`)
  if (!options.json) {
    bar.update({ status: run.status, ...runProgress(run) })
    bar.finish(`run ${run.id} ${run.status}`)
  }
  return run
}
