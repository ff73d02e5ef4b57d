import Type, { type Static, type TSchema } from 'typebox'

/**
 * `schema` or null, written as `type: [T, 'null']` (JSON Schema 2020-12, OpenAPI 3.1): the response
 * serialiser checks that with `=== null`, where an anyOf of the two runs a validator per branch on
 * every response.
 */
export function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] })
}

/**
 * A JSON object with any fields. `additionalProperties: true` lets the response serialiser copy the
 * fields as they are, where a Record's `patternProperties` would test a pattern on every key.
 */
export const JsonObjectSchema = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  additionalProperties: true,
})

/**
 * Largest value of a Postgres `integer` column (int4). Every integer parameter that reaches a query
 * is bounded by it, so too large a number is a 400, not a database error.
 */
export const INT4_MAX = 2_147_483_647

/** A non-negative integer parameter that fits an int4 column. */
export function Int4(options: { minimum?: number; description?: string } = {}) {
  return Type.Integer({ minimum: 0, ...options, maximum: INT4_MAX })
}

export const UuidSchema = Type.String({ format: 'uuid', description: 'resource id (UUID)' })
export const TimestampSchema = Type.String({ format: 'date-time' })

export const IdParamsSchema = Type.Object({ id: UuidSchema })
export type IdParams = Static<typeof IdParamsSchema>

export const PageQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
})
export type PageQuery = Static<typeof PageQuerySchema>

/** A page of items in a stable order; `next_cursor` is null on the last page. */
export function PageSchema<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), next_cursor: Nullable(Type.String()) })
}
export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

/** Free-form string key/value pairs attached by clients (at most 16, as fine-tuning APIs allow). */
export const MetadataSchema = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), {
  maxProperties: 16,
  description:
    'string key/value pairs; `mlflow_experiment` tracks the run in that MLflow experiment when the service has MLFLOW_TRACKING_URI',
})
export type Metadata = Static<typeof MetadataSchema>
