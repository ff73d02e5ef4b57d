import { existsSync } from 'node:fs'
import path from 'node:path'
import { makeTinyModel } from '../model/tiny.ts'

const making = new Map<string, Promise<void>>()

/** Writes the built-in tiny model into `dir` once (seeded, so every worker makes the same one). */
export function makeTinyModelOnce(dir: string): Promise<void> {
  if (existsSync(path.join(dir, 'config.json'))) return Promise.resolve()
  let pending = making.get(dir)
  if (!pending) {
    pending = makeTinyModel(dir, { seed: 0 })
      .then(() => undefined)
      .finally(() => making.delete(dir))
    making.set(dir, pending)
  }
  return pending
}
