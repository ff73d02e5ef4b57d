import Type, { type Static } from 'typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'

/** `live`: heartbeating; `stopped`: shut down cleanly; `lost`: silent without having stopped (it died). */
export const WORKER_STATES = ['live', 'stopped', 'lost'] as const
export type WorkerState = (typeof WORKER_STATES)[number]

export const WorkerSchema = Type.Object({
  id: Type.String({ description: 'hostname-pid-random, as runs show it in worker_id' }),
  hostname: Type.String(),
  pid: Type.Integer(),
  devices: Type.Array(Type.String(), {
    description: '`cpu` and the GPU devices whose queued runs this worker takes',
  }),
  concurrency: Type.Integer({ description: 'runs it trains at once at most' }),
  state: Type.Enum(WORKER_STATES),
  run_ids: Type.Array(UuidSchema, { description: 'runs it holds now' }),
  started_at: TimestampSchema,
  heartbeat_at: TimestampSchema,
  stopped_at: Nullable(TimestampSchema),
})
export type WorkerDto = Static<typeof WorkerSchema>

export const WorkerListQuerySchema = Type.Object(
  {
    all: Type.Optional(
      Type.Boolean({
        description: 'also the stopped and lost workers of the last 24 hours (default: live ones)',
      }),
    ),
  },
  { additionalProperties: false },
)
