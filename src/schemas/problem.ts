import Type, { type Static } from 'typebox'

/** RFC 9457 problem details, the body of every error response (`application/problem+json`). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'stable error code, see src/errors.ts' }),
    instance: Type.String({ description: 'request id' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String(),
          message: Type.String(),
          line: Type.Optional(Type.Integer()),
        }),
      ),
    ),
  },
  { $id: 'Problem' },
)
export type Problem = Static<typeof ProblemSchema>
