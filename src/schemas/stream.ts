import Type, { type Static } from 'typebox'
import { Int4 } from './common.ts'

/** One streamed frame: a run event row (metrics batches included) in `seq` order. */
export const FrameSchema = Type.Object({
  type: Type.String({
    description: 'metrics | status | phase | info | warning | checkpoint | iteration_end …',
  }),
  seq: Type.Integer(),
  step: Type.Integer(),
  data: Type.Record(Type.String(), Type.Unknown()),
  ts: Type.String({ format: 'date-time' }),
})
export type Frame = Static<typeof FrameSchema>

/** Control messages that are not part of the seq order. */
export type ControlMessage =
  | { type: 'subscribed'; run_id: string; from_seq: number }
  | { type: 'heartbeat'; last_seq: number; ts: string }
  | { type: 'resync'; dropped: number; from_seq: number }
  | { type: 'error'; code: string; detail: string }

export const StreamQuerySchema = Type.Object({
  since_step: Type.Optional(
    Int4({ minimum: -1, description: 'send frames after the metrics frame of this step' }),
  ),
  since_seq: Type.Optional(Int4({ description: 'send frames with a larger seq (exact resume)' })),
  api_key: Type.Optional(Type.String({ maxLength: 200 })),
})
export type StreamQuery = Static<typeof StreamQuerySchema>

/** First message a WebSocket client may send instead of query parameters. */
export const SubscribeMessageSchema = Type.Object({
  type: Type.Literal('subscribe'),
  since_step: Type.Optional(Int4({ minimum: -1 })),
  since_seq: Type.Optional(Int4()),
  api_key: Type.Optional(Type.String({ maxLength: 200 })),
})
export type SubscribeMessage = Static<typeof SubscribeMessageSchema>
