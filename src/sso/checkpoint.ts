/**
 * Trainer checkpoints: one folder per checkpoint, written under a temporary name, fsynced and renamed
 * into place, so a folder that exists is complete. It holds the trainer state (position, RNG state), the data of
 * the training phase in progress (examples with their reference log-probs, so a resume neither
 * regenerates nor rescores) and each model's weights or adapters with its optimizer state.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AppError } from '../errors.ts'
import { writeFolderAtomically } from '../model/index.ts'
import type { TrainablePolicy } from './policy-port.ts'
import type { RngState } from './rng.ts'
import type { TrainingMethod } from './trainer-interface.ts'
import type { PhaseData } from './training-phase.ts'

export interface TrainerState {
  version: 1
  method: TrainingMethod
  /** 1-based iteration in progress. */
  iteration: number
  /** Where inside the iteration: before generation, or inside a named training phase. */
  stage: 'generate' | 'train' | 'done'
  /** Optimizer steps over the whole run. */
  globalStep: number
  /** RNG state at this point (for 'generate': at the start of the iteration). */
  rng: RngState
  /** Present when stage = 'train'. */
  phase?: { name: string; stepsDone: number }
  /** Records of the iteration, kept so that SSO v2 can regenerate pairs after a resumed generator phase. */
  hasGenerator: boolean
}

const STATE = 'trainer-state.json'
const PHASE = 'phase-data.json'

export interface SavedCheckpoint {
  dir: string
  bytes: number
  kind: 'full' | 'lora'
}

export async function writeCheckpoint(
  root: string,
  state: TrainerState,
  phaseData: PhaseData | undefined,
  models: Record<string, TrainablePolicy>,
): Promise<SavedCheckpoint> {
  const name = `step-${String(state.globalStep).padStart(7, '0')}-iter-${state.iteration}-${state.stage}`
  const dir = join(root, name)
  let kind: 'full' | 'lora' = 'full'
  try {
    const bytes = await writeFolderAtomically(dir, async (tmp) => {
      for (const [modelName, model] of Object.entries(models)) {
        const saved = await model.save(join(tmp, modelName))
        if (modelName === 'policy') kind = saved.kind
      }
      if (phaseData) await writeFile(join(tmp, PHASE), JSON.stringify(phaseData))
      await writeFile(join(tmp, STATE), JSON.stringify(state, null, 1))
    })
    return { dir, bytes, kind }
  } catch (e) {
    throw new AppError(
      'training_failed',
      `writing checkpoint ${dir} failed: ${(e as Error).message}`,
      undefined,
      {
        cause: e,
      },
    )
  }
}

export interface LoadedCheckpoint {
  state: TrainerState
  phaseData?: PhaseData
  /** Folder of a saved model by name ('policy', 'generator'). */
  modelDir(name: string): string
}

export async function readCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  let state: TrainerState
  try {
    state = JSON.parse(await readFile(join(dir, STATE), 'utf8')) as TrainerState
  } catch (e) {
    throw new AppError('invalid_state', `checkpoint ${dir} has no readable ${STATE}`, { dir }, { cause: e })
  }
  if (state.version !== 1)
    throw new AppError('invalid_state', `checkpoint ${dir} has version ${state.version}, expected 1`)
  let phaseData: PhaseData | undefined
  if (state.stage === 'train') phaseData = JSON.parse(await readFile(join(dir, PHASE), 'utf8')) as PhaseData
  return { state, phaseData, modelDir: (name) => join(dir, name) }
}
