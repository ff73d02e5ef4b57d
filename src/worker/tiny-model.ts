import { existsSync } from 'node:fs'
import path from 'node:path'
import { AppError } from '../errors.ts'
import type { RunTrainer } from '../sso/trainer-interface.ts'

// Resolved at run time so the service starts (and its tests run) before the trainer module is built.
const TRAINER_MODULE = '../sso/trainer.ts'
const TINY_MODEL_MODULE = '../model/tiny.ts'

/** The SSO trainer's `runTrainer`; fails each job with a clear error while it is unavailable. */
export async function loadTrainer(): Promise<RunTrainer> {
  try {
    const mod = (await import(TRAINER_MODULE)) as { runTrainer?: RunTrainer }
    if (mod.runTrainer) return mod.runTrainer
  } catch {
    // fall through
  }
  return async () => {
    throw new AppError(
      'training_failed',
      `no trainer available: ${TRAINER_MODULE} does not export runTrainer`,
    )
  }
}

const making = new Map<string, Promise<void>>()

/** Writes the built-in tiny model into `dir` once (seeded, so every worker makes the same one). */
export function makeTinyModelOnce(dir: string): Promise<void> {
  if (existsSync(path.join(dir, 'config.json'))) return Promise.resolve()
  let pending = making.get(dir)
  if (!pending) {
    pending = (async () => {
      const { makeTinyModel } = (await import(TINY_MODEL_MODULE)) as {
        makeTinyModel(dir: string, opts: { seed: number }): Promise<unknown>
      }
      await makeTinyModel(dir, { seed: 0 })
    })().finally(() => making.delete(dir))
    making.set(dir, pending)
  }
  return pending
}
