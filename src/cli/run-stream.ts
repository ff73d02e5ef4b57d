/**
 * Follows a run's WebSocket stream (GET /v1/runs/:id/stream): subscribes from a step, drops frames
 * already seen (by their monotonic seq) and reconnects from the last step after a dropped connection,
 * so the caller sees every frame once.
 */
import WebSocket from 'ws'
import { AppError } from '../errors.ts'
import type { ApiClient } from './api-client.ts'

export interface StreamFrame {
  seq?: number
  type: string
  [key: string]: unknown
}

export interface FollowOptions {
  sinceStep?: number
  /** Return false to close the stream (e.g. the run reached a terminal status). */
  onFrame(frame: StreamFrame): boolean | undefined
  maxReconnects?: number
  signal?: AbortSignal
}

/** The step a frame is about, when it carries one (metrics frames do). */
export function frameStep(frame: StreamFrame): number | undefined {
  const step = frame.step ?? (frame.data as { step?: unknown } | undefined)?.step
  return typeof step === 'number' ? step : undefined
}

export async function followRun(client: ApiClient, runId: string, options: FollowOptions): Promise<void> {
  let lastSeq = -1
  let nextStep = options.sinceStep ?? 0
  let reconnects = 0
  for (;;) {
    const outcome = await new Promise<'done' | 'dropped'>((resolve, reject) => {
      const ws = new WebSocket(client.streamUrl(runId, nextStep), { headers: client.headers() })
      let finished = false
      const finish = (how: 'done' | 'dropped') => {
        if (finished) return
        finished = true
        options.signal?.removeEventListener('abort', onAbort)
        ws.close()
        resolve(how)
      }
      const onAbort = () => finish('done')
      options.signal?.addEventListener('abort', onAbort)
      ws.on('message', (data) => {
        let frame: StreamFrame
        try {
          frame = JSON.parse(String(data)) as StreamFrame
        } catch {
          return
        }
        if (typeof frame.seq === 'number') {
          if (frame.seq <= lastSeq) return
          lastSeq = frame.seq
        }
        const step = frameStep(frame)
        if (step !== undefined) nextStep = Math.max(nextStep, step + 1)
        reconnects = 0
        if (options.onFrame(frame) === false) finish('done')
      })
      ws.on('unexpected-response', (_req, res) => {
        finished = true
        const status = res.statusCode ?? 0
        reject(
          new AppError(
            status === 401 || status === 403 ? 'unauthorized' : status === 404 ? 'not_found' : 'internal',
            `stream of run '${runId}' refused with ${status} ${res.statusMessage ?? ''}`.trim(),
            { status },
          ),
        )
      })
      ws.on('error', (e) => {
        if (!finished && ws.readyState !== WebSocket.OPEN && reconnects >= (options.maxReconnects ?? 5)) {
          finished = true
          reject(new AppError('internal', `cannot open the stream of run '${runId}': ${e.message}`))
        }
      })
      ws.on('close', () => finish('dropped'))
    })
    if (outcome === 'done' || options.signal?.aborted) return
    reconnects++
    if (reconnects > (options.maxReconnects ?? 5)) {
      throw new AppError(
        'internal',
        `the stream of run '${runId}' kept dropping (${reconnects - 1} reconnects)`,
      )
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** reconnects)))
  }
}
