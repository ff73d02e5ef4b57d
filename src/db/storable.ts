/** A high surrogate without its low half, or a low one without its high half. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const LONE_SURROGATES = new RegExp(LONE_SURROGATE, 'g')

/**
 * Postgres text and jsonb cannot hold U+0000 or a lone UTF-16 surrogate, which text the service did
 * not write can contain: sampled text from a small model, or an error message quoting a user's file.
 * Such characters are stored as U+FFFD (the replacement character), so the row is kept instead of
 * refused (a refused failure record left its run retrying forever).
 */
export function storableJson(value: unknown): unknown {
  if (typeof value === 'string')
    return value.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATES, '\uFFFD')
  if (Array.isArray(value)) return value.map(storableJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableJson(k), storableJson(v)]))
  }
  return value
}
