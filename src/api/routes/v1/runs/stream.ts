import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import Value from 'typebox/value'
import type WebSocket from 'ws'
import { AppError, NotFoundError } from '../../../../errors.ts'
import { IdParamsSchema, Int4 } from '../../../../schemas/common.ts'
import {
  type StreamQuery,
  StreamQuerySchema,
  type SubscribeMessage,
  SubscribeMessageSchema,
} from '../../../../schemas/stream.ts'
import { presentedKey } from '../../../plugins/app/api-key-auth.ts'
import { toProblem } from '../../../plugins/app/error-handler.ts'
import { PROJECT_HEADER } from '../../../plugins/app/project-scope.ts'
import { type FrameSink, RunSubscription } from '../../../stream/run-subscription.ts'

/** A client that authenticates by message must do so this quickly. */
const FIRST_MESSAGE_TIMEOUT_MS = 5000

const REVOKED = JSON.stringify({ type: 'error', code: 'unauthorized', detail: 'the API key was revoked' })

const StreamHeadersSchema = Type.Object({
  'last-event-id': Type.Optional(Int4({ description: 'SSE: resume after this seq (as since_seq)' })),
})

/**
 * GET /v1/runs/:id/stream: a WebSocket (upgrade requests) or Server-Sent Events (plain GET) carrying
 * the run's frames from `since_seq`, or from after `since_step`'s metrics frame, then live.
 */
export const runStreamRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const startFrom = async (runId: string, q: { since_seq?: number; since_step?: number }) => {
    if (q.since_seq !== undefined) return q.since_seq
    if (q.since_step !== undefined && q.since_step >= 0)
      return app.repos.events.seqAfterStep(runId, q.since_step)
    return 0
  }

  const subscribe = async (
    runId: string,
    q: StreamQuery | SubscribeMessage,
    sink: FrameSink,
    request: FastifyRequest,
  ) => {
    const sub = new RunSubscription(
      runId,
      await startFrom(runId, q),
      app.hub,
      app.repos.events,
      sink,
      app.streamLimits,
      app.streamStats,
      request.log,
    )
    await sub.start()
    return sub
  }

  app.route({
    method: 'GET',
    url: '/runs/:id/stream',
    config: { authOptional: true, keyInQuery: true },
    schema: {
      tags: ['runs'],
      description:
        'Live frames of a run. WebSocket when upgraded (key in a header, `?api_key=`, or a first message ' +
        '`{"type":"subscribe","api_key":…,"since_step":…}`); otherwise Server-Sent Events (key required, ' +
        'Last-Event-ID resumes). Frames: {type, seq, step, data, ts}; control messages have no seq.',
      params: IdParamsSchema,
      querystring: StreamQuerySchema,
      headers: StreamHeadersSchema,
      produces: ['text/event-stream'],
      response: {
        200: {
          description: 'Server-Sent Events (WebSocket clients get 101 Switching Protocols)',
          content: { 'text/event-stream': { schema: Type.String() } },
        },
      },
    },
    // With a key on the request, another project's run is a 404 here; a WebSocket that sends its
    // key in the first message is checked again once that key is known.
    preHandler: async (request) => {
      const { id } = request.params as { id: string }
      if (!(await app.repos.runs.findStatus(id, request.projectScope))) throw new NotFoundError('run', id)
    },
    handler: async (request, reply) => {
      if (!request.apiKey)
        throw new AppError(
          'unauthorized',
          'an API key is required (Authorization: Bearer <key> or ?api_key=)',
        )
      const { id } = request.params
      const lastEventId = request.headers['last-event-id']
      const query = lastEventId === undefined ? request.query : { ...request.query, since_seq: lastEventId }
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      const sink: FrameSink = {
        send: (text) => {
          res.write(`data: ${text}\n\n`)
        },
        sendFrame: (live) => {
          res.write(`id: ${live.frame.seq}\ndata: ${live.text}\n\n`)
        },
        bufferedBytes: () => res.writableLength,
        close: () => res.end(),
      }
      // Listened for before subscribing: a client that leaves during the backfill must not leave
      // its subscription (and heartbeat timer) behind.
      let sub: RunSubscription | undefined
      let unwatch: (() => void) | undefined
      let closed = false
      res.on('close', () => {
        closed = true
        unwatch?.()
        sub?.stop()
      })
      sub = await subscribe(id, query, sink, request)
      if (closed) return sub.stop()
      const live = sub
      unwatch = app.streamKeys.watch(presentedKey(request)!, () => {
        sink.send(REVOKED)
        live.stop()
        sink.close('revoked')
      })
    },
    wsHandler: (socket: WebSocket, request) => {
      const { id } = request.params as { id: string }
      const sink: FrameSink = {
        send: (text) => {
          if (socket.readyState === socket.OPEN) socket.send(text)
        },
        sendFrame: (live) => {
          if (socket.readyState === socket.OPEN) socket.send(live.bytes, { binary: false })
        },
        bufferedBytes: () => socket.bufferedAmount,
        close: (reason) => socket.close(1011, reason),
      }
      let sub: RunSubscription | undefined
      let closed = false
      let unwatch: (() => void) | undefined
      socket.on('close', () => {
        closed = true
        unwatch?.()
        sub?.stop()
      })
      const fail = (error: Error) => {
        const problem = toProblem(error, request)
        sink.send(JSON.stringify({ type: 'error', code: problem.code, detail: problem.detail }))
        socket.close(problem.status === 401 ? 4401 : problem.status === 403 ? 4403 : 1008, problem.code)
      }
      const begin = (key: string, q: StreamQuery | SubscribeMessage) =>
        subscribe(id, q, sink, request).then(
          (s) => {
            sub = s
            if (closed) return s.stop()
            unwatch = app.streamKeys.watch(key, () => {
              sink.send(REVOKED)
              socket.close(4401, 'unauthorized')
            })
          },
          (e) => fail(e),
        )
      if (request.apiKey) {
        void begin(presentedKey(request)!, request.query as StreamQuery)
        return
      }
      // No key on the upgrade request: the first message must carry it.
      const timer = setTimeout(
        () => fail(new AppError('unauthorized', 'no API key within 5 s of connecting')),
        FIRST_MESSAGE_TIMEOUT_MS,
      )
      socket.once('message', async (data) => {
        clearTimeout(timer)
        try {
          let message: unknown
          try {
            message = JSON.parse(String(data))
          } catch {
            throw new AppError(
              'validation_failed',
              'the first message must be JSON: {"type":"subscribe","api_key":…}',
            )
          }
          if (!Value.Check(SubscribeMessageSchema, message)) {
            throw new AppError(
              'validation_failed',
              'the first message must be {"type":"subscribe","api_key":…,"since_step"?:n}',
            )
          }
          const key = await app.authenticateFrom(request.ip, message.api_key)
          app.requireScope(key, 'read')
          const picked = request.headers[PROJECT_HEADER]
          const scope = await app.projectScopeOf(key, typeof picked === 'string' ? picked : undefined)
          if (!(await app.repos.runs.findStatus(id, scope))) throw new NotFoundError('run', id)
          // Positions in the message win over those in the URL.
          await begin(message.api_key!, { ...(request.query as StreamQuery), ...message })
        } catch (e) {
          fail(e as Error)
        }
      })
    },
  })
}
