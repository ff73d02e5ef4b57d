/**
 * Follows a run's WebSocket stream (GET /v1/runs/:id/stream). Frames carry a per-run, gap-free `seq`:
 * after a dropped connection the client resubscribes with `since_seq` of the last frame it saw, so the
 * caller sees every frame exactly once. Control messages (subscribed, heartbeat, resync) have no seq.
 */
import WebSocket from 'ws'
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.ts'
import type { ApiClient } from './api-client.ts'

/** A stream frame (src/schemas/stream.ts): one run event row, metrics batches included. */
export interface StreamFrame {
  type: string
  seq: number
  step: number
  data: Record<string, unknown>
  ts: string
}

export interface FollowOptions {
  /** Start after the metrics frame of this step (-1: from the beginning). */
  sinceStep?: number
  /** Return false to close the stream (e.g. the run reached a terminal status). */
  onFrame(frame: StreamFrame): boolean | undefined
  maxReconnects?: number
  signal?: AbortSignal
}

export async function followRun(client: ApiClient, runId: string, options: FollowOptions): Promise<void> {
  let lastSeq: number | undefined
  let reconnects = 0
  const maxReconnects = options.maxReconnects ?? 5
  for (;;) {
    const url = client.streamUrl(runId)
    if (lastSeq === undefined) url.searchParams.set('since_step', String(options.sinceStep ?? -1))
    else url.searchParams.set('since_seq', String(lastSeq))
    const outcome = await new Promise<'done' | 'dropped'>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: client.headers() })
      let settled = false
      const settle = (how: 'done' | 'dropped') => {
        if (settled) return
        settled = true
        options.signal?.removeEventListener('abort', onAbort)
        ws.close()
        resolve(how)
      }
      const onAbort = () => settle('done')
      options.signal?.addEventListener('abort', onAbort)
      ws.on('message', (data) => {
        let message: { type?: string; seq?: unknown; code?: string; detail?: string }
        try {
          message = JSON.parse(String(data))
        } catch {
          return
        }
        if (message.type === 'error') {
          settled = true
          ws.close()
          const code = (ERROR_CODES as readonly string[]).includes(message.code ?? '')
            ? (message.code as ErrorCode)
            : 'internal'
          reject(new AppError(code, `stream of run '${runId}' refused: ${message.code}: ${message.detail}`))
          return
        }
        if (typeof message.seq !== 'number') return // control message
        if (lastSeq !== undefined && message.seq <= lastSeq) return
        lastSeq = message.seq
        reconnects = 0
        if (options.onFrame(message as StreamFrame) === false) settle('done')
      })
      ws.on('unexpected-response', (_req, res) => {
        settled = true
        const status = res.statusCode ?? 0
        const code =
          status === 401
            ? 'unauthorized'
            : status === 403
              ? 'forbidden'
              : status === 404
                ? 'not_found'
                : 'internal'
        reject(
          new AppError(
            code,
            `stream of run '${runId}' refused with ${status} ${res.statusMessage ?? ''}`.trim(),
          ),
        )
      })
      ws.on('error', (e) => {
        if (!settled && reconnects >= maxReconnects) {
          settled = true
          reject(new AppError('internal', `cannot open the stream of run '${runId}': ${e.message}`))
        }
      })
      ws.on('close', () => settle('dropped'))
    })
    if (outcome === 'done' || options.signal?.aborted) return
    reconnects++
    if (reconnects > maxReconnects) {
      throw new AppError(
        'internal',
        `the stream of run '${runId}' kept dropping (${maxReconnects} reconnects)`,
      )
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** reconnects)))
  }
}
