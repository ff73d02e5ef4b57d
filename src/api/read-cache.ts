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

interface InFlight {
  ticket: ReadTicket
  response: Promise<CachedResponse | undefined>
  settle(response: CachedResponse | undefined): void
}

/**
 * Response texts of GET requests, each depending on one named thing (a run, a run's results, a
 * collection). `changed(dependency)` makes every response read before it stale, including reads still
 * in flight, which is why a read takes a ticket before it queries and stores under that ticket: an
 * entry is fresh while nothing it depends on changed after its ticket, and for at most `ttlMs`.
 * Requests for a key whose read is in flight wait for it instead of querying too (an expired entry
 * of a busy URL would otherwise send every request of the next few milliseconds to the database).
 */
export class ReadCache {
  /** Requests answered without the database, and those that went to it. */
  hits = 0
  misses = 0
  private clock = 0
  /** Tickets older than this were taken before the last `clear()`. */
  private floor = 0
  private readonly changedAt = new Map<string, ReadTicket>()
  private pruneAbove = 1024
  private readonly entries = new Map<string, Entry>()
  private readonly inFlight = new Map<string, InFlight>()
  private bytes = 0

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size
  }

  /**
   * A fresh response for `key` (a hit), or the response of the read of `key` in flight once it is
   * stored (also a hit), or undefined: the caller reads the database and calls `finish`.
   */
  async lookup(key: string): Promise<CachedResponse | undefined> {
    const found = this.fresh(key) ?? (await this.inFlight.get(key)?.response)
    if (found) this.hits++
    else this.misses++
    return found
  }

  /** Take before querying the database; later requests for `key` wait for `finish`. */
  begin(key: string): ReadTicket {
    const ticket = { seq: this.clock, at: this.now() }
    if (!this.inFlight.has(key)) {
      let settle!: InFlight['settle']
      const response = new Promise<CachedResponse | undefined>((resolve) => {
        settle = resolve
      })
      this.inFlight.set(key, { ticket, response, settle })
    }
    return ticket
  }

  /**
   * Ends the read that took `ticket`: stores its response (none for an error) unless something it
   * depends on changed since, and hands what was stored to the requests waiting for it.
   */
  finish(key: string, dependency: string, ticket: ReadTicket, response?: CachedResponse): void {
    const stored = response && this.store(key, dependency, ticket, response)
    const flight = this.inFlight.get(key)
    if (flight?.ticket !== ticket) return
    this.inFlight.delete(key)
    flight.settle(stored ? response : undefined)
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

  private fresh(key: string): Entry | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (!this.unchanged(entry.dependency, entry.ticket)) {
      this.remove(key, entry)
      return undefined
    }
    // Most recently used last: eviction takes the first entries.
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry
  }

  private store(key: string, dependency: string, ticket: ReadTicket, response: CachedResponse): boolean {
    const bytes = key.length + response.body.length
    if (bytes > MAX_ENTRY_BYTES || !this.unchanged(dependency, ticket)) return false
    const old = this.entries.get(key)
    if (old) this.remove(key, old)
    this.entries.set(key, { ...response, dependency, ticket, bytes })
    this.bytes += bytes
    for (const [k, e] of this.entries) {
      if (this.bytes <= MAX_BYTES) break
      this.remove(k, e)
    }
    return true
  }

  /** Nothing `dependency` names changed since `ticket`, nor was the cache cleared, within the TTL. */
  private unchanged(dependency: string, ticket: ReadTicket): boolean {
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
