import { createHash } from 'node:crypto'

/** Bytes of response text the cache holds at most (least recently used entries go first). */
const MAX_BYTES = 32 * 1024 * 1024
/** A response larger than this is not cached: it would push out many small ones. */
const MAX_ENTRY_BYTES = 1024 * 1024

/** When a read began: its response may be stored only if nothing it depends on changed since. */
export interface ReadTicket {
  seq: number
  at: number
}

export interface CachedResponse {
  body: string
  etag: string
}

interface Entry extends CachedResponse {
  dependency: string
  ticket: ReadTicket
  bytes: number
}

/** A strong validator of a response body. */
export function etagOf(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/** If-None-Match holds `etag` (weak comparison, as RFC 9110 asks for GET). */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag
  })
}

/**
 * Response texts of GET requests, each depending on one named thing (a run, a run's results, a
 * collection). `changed(dependency)` makes every response read before it stale, including reads still
 * in flight, which is why a read takes a ticket before it queries and stores under that ticket: an
 * entry is fresh while nothing it depends on changed after its ticket, and for at most `ttlMs`.
 */
export class ReadCache {
  hits = 0
  misses = 0
  private clock = 0
  /** Tickets older than this were taken before the last `clear()`. */
  private floor = 0
  private readonly changedAt = new Map<string, ReadTicket>()
  private pruneAbove = 1024
  private readonly entries = new Map<string, Entry>()
  private bytes = 0

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size
  }

  /** A fresh response for `key`, counted as a hit, or undefined (a miss). */
  lookup(key: string): CachedResponse | undefined {
    const entry = this.entries.get(key)
    if (entry && this.fresh(entry.dependency, entry.ticket)) {
      this.hits++
      // Most recently used last: eviction takes the first entries.
      this.entries.delete(key)
      this.entries.set(key, entry)
      return entry
    }
    if (entry) this.remove(key, entry)
    this.misses++
    return undefined
  }

  /** Take before querying the database for a response to store. */
  ticket(): ReadTicket {
    return { seq: this.clock, at: this.now() }
  }

  store(key: string, dependency: string, ticket: ReadTicket, response: CachedResponse): void {
    const bytes = key.length + response.body.length
    if (bytes > MAX_ENTRY_BYTES || !this.fresh(dependency, ticket)) return
    const old = this.entries.get(key)
    if (old) this.remove(key, old)
    this.entries.set(key, { ...response, dependency, ticket, bytes })
    this.bytes += bytes
    for (const [k, e] of this.entries) {
      if (this.bytes <= MAX_BYTES) break
      this.remove(k, e)
    }
  }

  /** Everything read so far about `dependency` is stale. */
  changed(dependency: string): void {
    const at = this.now()
    this.changedAt.set(dependency, { seq: ++this.clock, at })
    if (this.changedAt.size > this.pruneAbove) {
      // A change older than the TTL can only concern entries that expired anyway.
      for (const [d, c] of this.changedAt) if (at - c.at >= this.ttlMs) this.changedAt.delete(d)
      this.pruneAbove = Math.max(1024, 2 * this.changedAt.size)
    }
  }

  /** Everything read so far is stale (changes may have gone unheard). */
  clear(): void {
    this.floor = ++this.clock
    this.entries.clear()
    this.bytes = 0
  }

  private fresh(dependency: string, ticket: ReadTicket): boolean {
    return (
      this.now() - ticket.at < this.ttlMs &&
      ticket.seq >= this.floor &&
      (this.changedAt.get(dependency)?.seq ?? 0) <= ticket.seq
    )
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key)
    this.bytes -= entry.bytes
  }
}
