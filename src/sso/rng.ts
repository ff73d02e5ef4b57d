/**
 * Seeded pseudo-random numbers (sfc32) whose whole state is four 32-bit words, so a run can save it in a
 * checkpoint and continue the exact same stream after a resume.
 */
export type RngState = [number, number, number, number]

export class Rng {
  private s: Uint32Array

  private constructor(state: RngState) {
    this.s = Uint32Array.from(state)
  }

  /** Seeds through splitmix32 so that nearby seeds give unrelated streams. */
  static fromSeed(seed: number): Rng {
    let x = seed >>> 0
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    const rng = new Rng([next(), next(), next(), next()])
    for (let i = 0; i < 12; i++) rng.nextUint32()
    return rng
  }

  static fromState(state: RngState): Rng {
    return new Rng(state)
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]]
  }

  nextUint32(): number {
    const s = this.s
    const t = (((s[0] + s[1]) >>> 0) + s[3]) >>> 0
    s[3] = (s[3] + 1) >>> 0
    s[0] = s[1] ^ (s[1] >>> 9)
    s[1] = (s[2] + (s[2] << 3)) >>> 0
    s[2] = ((s[2] << 21) | (s[2] >>> 11)) >>> 0
    s[2] = (s[2] + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** A 32-bit seed for another component (for example a sampler), drawn from this stream. */
  seed(): number {
    return this.nextUint32()
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** Fisher-Yates shuffle into a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice()
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[out[i], out[j]] = [out[j], out[i]]
    }
    return out
  }

  /** k distinct items in random order (all of them when k >= length). */
  sample<T>(items: readonly T[], k: number): T[] {
    return this.shuffle(items).slice(0, Math.max(0, k))
  }
}
