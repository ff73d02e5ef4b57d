import Type, { type Static } from 'typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'

export const SCOPES = ['read', 'write', 'admin'] as const
export type Scope = (typeof SCOPES)[number]
export const ScopeSchema = Type.Enum(SCOPES)

export const ApiKeyCreateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, uniqueItems: true }),
  },
  { additionalProperties: false },
)
export type ApiKeyCreate = Static<typeof ApiKeyCreateSchema>

export const ApiKeySchema = Type.Object({
  id: UuidSchema,
  name: Type.String(),
  prefix: Type.String(),
  scopes: Type.Array(ScopeSchema),
  created_at: TimestampSchema,
  last_used_at: Nullable(TimestampSchema),
  revoked_at: Nullable(TimestampSchema),
})
export type ApiKeyDto = Static<typeof ApiKeySchema>
export const ApiKeyCreatedSchema = Type.Object({
  ...ApiKeySchema.properties,
  key: Type.String({ description: 'shown once' }),
})
