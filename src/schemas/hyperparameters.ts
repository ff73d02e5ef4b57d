import Type from 'typebox'
import { HyperparametersSchema } from '../sso/hyperparameters.ts'

/** The request form: every hyperparameter optional (defaults fill in), unknown names rejected. */
export const HyperparametersInputSchema = Type.Partial(HyperparametersSchema, { additionalProperties: false })
export { HyperparametersSchema }

/**
 * A copy of `schema` without its `default` keywords, at every depth, and with the properties that had
 * one optional: for hyperparameters in a response, since the response serializer writes a property's
 * default wherever it is missing (a model's few recommended settings would come back as every setting
 * there is).
 */
export function withoutDefaults<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(withoutDefaults) as T
  if (schema === null || typeof schema !== 'object') return schema
  const source = schema as Record<PropertyKey, unknown>
  const copy: Record<PropertyKey, unknown> = {}
  // TypeBox keeps its own markers ('~kind', '~optional') non-enumerable: the copy keeps them so.
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(source)))
    if (key !== 'default') Object.defineProperty(copy, key, { ...d, value: withoutDefaults(d.value) })
  const properties = source.properties as Record<string, { default?: unknown }> | undefined
  if (properties && Array.isArray(source.required)) {
    const required = source.required.filter((name: string) => properties[name]?.default === undefined)
    if (required.length > 0) copy.required = required
    else delete copy.required
  }
  return copy as T
}
