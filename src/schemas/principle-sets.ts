import Type, { type Static } from 'typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'

export const PrincipleSchema = Type.Object(
  {
    feature: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\w -]{1,64}$' }),
    good: Type.String({ minLength: 1, maxLength: 4000 }),
    bad: Type.String({ minLength: 1, maxLength: 4000 }),
  },
  { additionalProperties: false },
)
export type PrincipleDto = Static<typeof PrincipleSchema>

export const PrincipleSetCreateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    principles: Type.Array(PrincipleSchema, { minItems: 1, maxItems: 256 }),
    concision: Type.Optional(PrincipleSchema),
  },
  { additionalProperties: false },
)
export type PrincipleSetCreate = Static<typeof PrincipleSetCreateSchema>

export const PrincipleSetUpdateSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    principles: Type.Optional(Type.Array(PrincipleSchema, { minItems: 1, maxItems: 256 })),
    concision: Type.Optional(Type.Union([PrincipleSchema, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type PrincipleSetUpdate = Static<typeof PrincipleSetUpdateSchema>

/** A principle set with its latest version's content. */
export const PrincipleSetSchema = Type.Object({
  id: UuidSchema,
  name: Type.String(),
  description: Type.String(),
  version: Type.Integer({ description: 'latest version; versions used by runs are immutable' }),
  version_id: UuidSchema,
  locked: Type.Boolean({
    description: 'true when a run uses this version (the next edit creates a new one)',
  }),
  principles: Type.Array(PrincipleSchema),
  concision: Nullable(PrincipleSchema),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
})
export type PrincipleSet = Static<typeof PrincipleSetSchema>
