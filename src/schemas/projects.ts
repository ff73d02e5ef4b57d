import Type, { type Static } from 'typebox'
import { ApiKeySchema } from './api-keys.ts'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'

export const ProjectCreateSchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9][a-z0-9_-]*$' }) },
  { additionalProperties: false },
)

export const ProjectSchema = Type.Object({ id: UuidSchema, name: Type.String(), created_at: TimestampSchema })
export type ProjectDto = Static<typeof ProjectSchema>

/** A project named by id or name. */
export const ProjectParamsSchema = Type.Object({
  project: Type.String({
    minLength: 1,
    maxLength: 100,
    pattern: '^[\\w-]+$',
    description: 'project id or name',
  }),
})

/** The caller: its key, and the project it acts in (null: an admin key spanning every project). */
export const WhoAmISchema = Type.Object({
  key: ApiKeySchema,
  project: Nullable(Type.Object(ProjectSchema.properties)),
})
export type WhoAmI = Static<typeof WhoAmISchema>
