import Type, { type Static } from 'typebox'
import type { DatasetFormat } from '../sso/records.ts'
import { TRAINING_METHODS, type TrainingMethod } from '../sso/trainer-interface.ts'
import {
  INT4_MAX,
  Int4,
  JsonObjectSchema,
  MetadataSchema,
  Nullable,
  PageQuerySchema,
  TimestampSchema,
  UuidSchema,
} from './common.ts'
import { HyperparametersInputSchema } from './hyperparameters.ts'

export const RUN_STATUSES = [
  'queued',
  'running',
  'paused',
  'cancelling',
  'cancelled',
  'succeeded',
  'failed',
] as const
export type RunStatus = (typeof RUN_STATUSES)[number]
export const RunStatusSchema = Type.Enum(RUN_STATUSES)
/** Statuses a run never leaves. */
export const TERMINAL_STATUSES: readonly RunStatus[] = ['cancelled', 'succeeded', 'failed']
/** Statuses that count against a key's concurrent-run limit. */
export const ACTIVE_STATUSES: readonly RunStatus[] = ['queued', 'running', 'paused', 'cancelling']

export const MethodSchema = Type.Enum(TRAINING_METHODS)
export const DeviceSchema = Type.Enum(['auto', 'cpu', 'webgpu', 'cuda'] as const)

/** Dataset formats each method reads (what src/sso/trainer.ts reads for it); a run needs one of them. */
export const METHOD_DATASET_FORMATS: Record<TrainingMethod, readonly DatasetFormat[]> = {
  sso: ['queries'],
  sso_v2: ['queries'],
  pbaa: ['queries'],
  dpo: ['preference_pairs', 'sso_records'],
  ipo: ['preference_pairs', 'sso_records'],
  rm: ['preference_pairs', 'sso_records'],
  sft: ['sft_pairs'],
}

/** "queries for sso, sso_v2, pbaa; ..." for the API docs. */
function describeMethodFormats(): string {
  const byFormats = new Map<string, TrainingMethod[]>()
  for (const method of TRAINING_METHODS) {
    const formats = METHOD_DATASET_FORMATS[method].join(' or ')
    byFormats.set(formats, [...(byFormats.get(formats) ?? []), method])
  }
  return [...byFormats].map(([formats, methods]) => `${formats} for ${methods.join(', ')}`).join('; ')
}

export const RunCreateSchema = Type.Object(
  {
    method: MethodSchema,
    model_id: UuidSchema,
    principle_set_id: Type.Optional(UuidSchema),
    principle_set_version: Type.Optional(
      Int4({ minimum: 1, description: 'defaults to the latest version of the set' }),
    ),
    dataset_ids: Type.Array(UuidSchema, {
      maxItems: 16,
      default: [],
      description: `the data the run trains on, at least one dataset: ${describeMethodFormats()}`,
    }),
    hyperparameters: Type.Optional(HyperparametersInputSchema),
    device: Type.Optional(DeviceSchema),
    seed: Type.Optional(Int4()),
    metadata: Type.Optional(MetadataSchema),
  },
  { additionalProperties: false },
)
export type RunCreate = Static<typeof RunCreateSchema>

export const RunErrorSchema = Type.Object({ code: Type.String(), message: Type.String() })
export type RunError = Static<typeof RunErrorSchema>

export const RunSchema = Type.Object({
  id: UuidSchema,
  status: RunStatusSchema,
  method: MethodSchema,
  model_id: UuidSchema,
  principle_set_version_id: Nullable(UuidSchema),
  dataset_ids: Type.Array(UuidSchema),
  hyperparameters: JsonObjectSchema,
  device: DeviceSchema,
  device_used: Nullable(Type.String()),
  seed: Type.Integer(),
  metadata: MetadataSchema,
  attempt: Type.Integer(),
  worker_id: Nullable(Type.String()),
  current_step: Type.Integer(),
  heartbeat_at: Nullable(TimestampSchema),
  mlflow_run_id: Nullable(
    Type.String({
      description:
        'MLflow run this run is tracked in (runs with metadata.mlflow_experiment), set when its first attempt starts',
    }),
  ),
  error: Nullable(RunErrorSchema),
  created_at: TimestampSchema,
  started_at: Nullable(TimestampSchema),
  finished_at: Nullable(TimestampSchema),
})
export type RunDto = Static<typeof RunSchema>

export const RunListQuerySchema = Type.Object({
  ...PageQuerySchema.properties,
  status: Type.Optional(RunStatusSchema),
  method: Type.Optional(MethodSchema),
  created_after: Type.Optional(TimestampSchema),
  created_before: Type.Optional(TimestampSchema),
})
export type RunListQuery = Static<typeof RunListQuerySchema>

export const RunEventSchema = Type.Object({
  seq: Type.Integer({ description: 'per-run frame number, gap-free' }),
  type: Type.String(),
  step: Type.Integer(),
  data: JsonObjectSchema,
  created_at: TimestampSchema,
})
export type RunEventDto = Static<typeof RunEventSchema>

export const EventListQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  after_seq: Type.Optional(Int4({ description: 'cursor: the last seq already seen' })),
  type: Type.Optional(Type.String({ maxLength: 64 })),
})
export type EventListQuery = Static<typeof EventListQuerySchema>

export const EventPageSchema = Type.Object({
  items: Type.Array(RunEventSchema),
  next_after_seq: Nullable(Type.Integer()),
})

export const MetricsQuerySchema = Type.Object({
  keys: Type.Optional(
    Type.String({ maxLength: 2000, description: 'comma-separated metric names; all when absent' }),
  ),
  step_from: Type.Optional(Int4()),
  step_to: Type.Optional(Int4()),
  max_points: Type.Optional(
    Type.Integer({
      minimum: 2,
      maximum: 100_000,
      description: 'downsample each series to about this many points',
    }),
  ),
})
export type MetricsQuery = Static<typeof MetricsQuerySchema>

export const MetricSeriesSchema = Type.Object({
  key: Type.String(),
  /** [step, value] pairs in step order; downsampled series keep each bucket's mean at its last step. */
  points: Type.Array(Type.Tuple([Type.Integer(), Type.Number()])),
})
export type MetricSeries = Static<typeof MetricSeriesSchema>
export const MetricsResponseSchema = Type.Object({
  run_id: UuidSchema,
  series: Type.Array(MetricSeriesSchema),
})

export const SampleSchema = Type.Object({
  iteration: Type.Integer(),
  index: Type.Integer(),
  record: JsonObjectSchema,
})
export type SampleDto = Static<typeof SampleSchema>
export const SamplesQuerySchema = Type.Object({
  iteration: Type.Optional(Int4()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX, default: 0 })),
})
export type SamplesQuery = Static<typeof SamplesQuerySchema>

export const CheckpointSchema = Type.Object({
  id: UuidSchema,
  step: Type.Integer(),
  iteration: Type.Integer(),
  kind: Type.Union([Type.Literal('full'), Type.Literal('lora')]),
  bytes: Type.Integer(),
  files: Type.Array(Type.Object({ name: Type.String(), bytes: Type.Integer() })),
  created_at: TimestampSchema,
})
export type CheckpointDto = Static<typeof CheckpointSchema>
export const CheckpointFileParamsSchema = Type.Object({
  id: UuidSchema,
  checkpointId: UuidSchema,
  file: Type.String({ pattern: '^[\\w.-]+$', maxLength: 255 }),
})
