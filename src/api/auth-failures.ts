/**
 * Wrong API keys per client address in fixed one-minute windows. Once an address has used up its
 * allowance, every request from it that needs a key is refused (429) before the key is looked up,
 * so a guess that happens to be right cannot be told from one that is wrong.
 */
export class AuthFailures {
  private readonly windows = new Map<string, { count: number; until: number }>()

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Milliseconds until `address` may try again, or 0 when it may now. */
  blockedFor(address: string, now = Date.now()): number {
    const w = this.windows.get(address)
    if (!w || w.until <= now) return 0
    return w.count >= this.perMinute ? w.until - now : 0
  }

  fail(address: string, now = Date.now()): void {
    let w = this.windows.get(address)
    if (!w || w.until <= now) {
      // Expired windows go when the map grows, so a spray of addresses cannot exhaust memory.
      if (this.windows.size >= 10_000)
        for (const [a, x] of this.windows) if (x.until <= now) this.windows.delete(a)
      w = { count: 0, until: now + this.windowMs }
      this.windows.set(address, w)
    }
    w.count++
  }
}
