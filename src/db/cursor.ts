import { ValidationError } from '../errors.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Opaque keyset cursor over (created_at, id), newest first. */
export interface CreatedCursor {
  createdAt: Date
  id: string
}

export function encodeCursor(c: CreatedCursor): string {
  return Buffer.from(JSON.stringify([c.createdAt.toISOString(), c.id])).toString('base64url')
}

export function decodeCursor(cursor: string): CreatedCursor {
  try {
    const [iso, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string]
    const createdAt = new Date(iso)
    // Ids are uuid columns: any other text would reach Postgres and fail there.
    if (Number.isNaN(createdAt.getTime()) || typeof id !== 'string' || !UUID.test(id))
      throw new Error('bad fields')
    return { createdAt, id }
  } catch {
    throw new ValidationError(`cursor '${cursor}' is not a cursor this API returned`, { cursor })
  }
}

/** Prisma `where` fragment: rows strictly after the cursor in (created_at desc, id desc) order. */
export function afterCursor(cursor: string | undefined) {
  if (!cursor) return {}
  const c = decodeCursor(cursor)
  return { OR: [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }] }
}

/**
 * Prisma `findMany` arguments for one page newest first: the rows after `cursor` that match every one of
 * `filters`, taking one row more than `limit` so `toPage` can tell whether another page follows.
 */
export function pageQuery<W extends object>(limit: number, cursor: string | undefined, filters: W[] = []) {
  const after = afterCursor(cursor)
  return {
    where: filters.length > 0 ? { AND: [after, ...filters] } : after,
    orderBy: [{ createdAt: 'desc' as const }, { id: 'desc' as const }],
    take: limit + 1,
  }
}

/** Splits a `limit + 1` result into a page and its next cursor. */
export function toPage<R extends { createdAt: Date; id: string }, T>(
  rows: R[],
  limit: number,
  map: (r: R) => T,
) {
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return {
    items: items.map(map),
    next_cursor: rows.length > limit && last ? encodeCursor(last) : null,
  }
}
