import Type, { type Static } from 'typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.ts'
import { HyperparametersSchema, withoutDefaults } from './hyperparameters.ts'

export const MODEL_KINDS = ['builtin_tiny', 'local_hf'] as const
export type ModelKind = (typeof MODEL_KINDS)[number]

export const ModelCreateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\w.-]+$' }),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description: 'a Hugging Face folder relative to MODELS_ROOT (give this or run_id)',
      }),
    ),
    run_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description:
          'a succeeded run whose final model to register, to train further runs on it (give this or path)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ModelCreate = Static<typeof ModelCreateSchema>

export const ModelSchema = Type.Object({
  id: UuidSchema,
  name: Type.String(),
  kind: Type.Enum(MODEL_KINDS),
  path: Type.String(),
  config: Nullable(Type.Record(Type.String(), Type.Unknown())),
  recommended_hyperparameters: Type.Optional(
    withoutDefaults(
      Type.Partial(HyperparametersSchema, {
        additionalProperties: false,
        description:
          "a run's hyperparameters known to train this model visibly within minutes on a CPU (the demo model's); a new-run form starts from them",
      }),
    ),
  ),
  created_at: TimestampSchema,
})
export type ModelDto = Static<typeof ModelSchema>
