import Type, { type Static } from 'typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'

export const SCOPES = ['read', 'write', 'admin'] as const
export type Scope = (typeof SCOPES)[number]
export const ScopeSchema = Type.Enum(SCOPES)

export const ApiKeyCreateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, uniqueItems: true }),
    project_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: '^[\\w-]+$',
        description:
          'project (id or name) the key acts in; required unless the key is admin, which spans every project without one',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ApiKeyCreate = Static<typeof ApiKeyCreateSchema>

export const ApiKeySchema = Type.Object({
  id: UuidSchema,
  name: Type.String(),
  prefix: Type.String(),
  scopes: Type.Array(ScopeSchema),
  project_id: Nullable(
    Type.String({ format: 'uuid', description: 'null: an admin key spanning every project' }),
  ),
  created_at: TimestampSchema,
  last_used_at: Nullable(TimestampSchema),
  revoked_at: Nullable(TimestampSchema),
})
export type ApiKeyDto = Static<typeof ApiKeySchema>
export const ApiKeyCreatedSchema = Type.Object({
  ...ApiKeySchema.properties,
  key: Type.String({ description: 'shown once' }),
})
