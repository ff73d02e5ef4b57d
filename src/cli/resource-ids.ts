/**
 * Ids as people type them: a full id, or its first characters as the dashboard shows them (`2eddc27b`).
 * A prefix is looked up among the service's ids; one that matches several is refused with the matches.
 */
import { AppError } from '../errors.ts'
import type { ApiClient, Query } from './api-client.ts'

export type Collection = 'runs' | 'datasets' | 'models' | 'principle-sets'

const NOUN: Record<Collection, string> = {
  runs: 'run',
  datasets: 'dataset',
  models: 'model',
  'principle-sets': 'principle set',
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface Listed {
  id: string
  name?: string
  [key: string]: unknown
}

/** Every item of a paginated listing (`items` + `next_cursor`). */
export async function listAll<T extends Listed>(
  client: ApiClient,
  collection: Collection,
  query: Query = {},
): Promise<T[]> {
  const items: T[] = []
  let cursor: string | undefined
  do {
    const page = await client.get<{ items: T[]; next_cursor?: string | null }>(`/v1/${collection}`, {
      ...query,
      limit: 200,
      cursor,
    })
    items.push(...page.items)
    cursor = page.next_cursor ?? undefined
  } while (cursor)
  return items
}

/** The one item whose id starts with `prefix`; none or several are errors that say which. */
export function matchPrefix<T extends Listed>(
  items: readonly T[],
  prefix: string,
  collection: Collection,
): T {
  const wanted = prefix.toLowerCase()
  const matches = items.filter((item) => item.id.toLowerCase().startsWith(wanted))
  if (matches.length === 1) return matches[0]
  if (matches.length === 0)
    throw new AppError('not_found', `no ${NOUN[collection]} id starts with '${prefix}'`)
  const listed = matches.map((m) => (m.name ? `${m.id} (${m.name})` : m.id)).join(', ')
  throw new AppError(
    'validation_failed',
    `'${prefix}' matches ${matches.length} ${collection.replace('-', ' ')}: ${listed}; give more characters`,
    { prefix, matches: matches.map((m) => m.id) },
  )
}

/** A full id from a full id, a unique id prefix, or a name only one item has (such as `demo-queries`). */
export async function resolveId(client: ApiClient, collection: Collection, given: string): Promise<string> {
  if (UUID.test(given)) return given
  const hex = /^[0-9a-f-]+$/i.test(given)
  const named = collection !== 'runs' // runs have no names
  if (!hex && !named) {
    throw new AppError('validation_failed', `'${given}' is not a ${NOUN[collection]} id or the start of one`)
  }
  const items = await listAll(client, collection)
  const byName = items.filter((item) => item.name === given)
  if (byName.length === 1) return byName[0].id
  if (byName.length > 1)
    throw new AppError(
      'validation_failed',
      `${byName.length} ${collection.replace('-', ' ')} are named '${given}': ${byName.map((m) => m.id).join(', ')}; give an id`,
    )
  if (!hex) throw new AppError('not_found', `no ${NOUN[collection]} is named '${given}'`)
  return matchPrefix(items, given, collection).id
}

/** id → name of a collection's items, for listings that show names instead of ids. */
export async function namesById(client: ApiClient, collection: Collection): Promise<Map<string, string>> {
  return new Map((await listAll(client, collection)).map((item) => [item.id, item.name ?? item.id]))
}
