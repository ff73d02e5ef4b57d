/**
 * The demo's starting policy: the tiny model after a short SFT on the checkable-task corpus, in which
 * the principle in the system message decides the behaviour. A random-weight model writes noise, so
 * its samples would show nothing; this one answers in words, and SSO then visibly moves its plain
 * answers toward the good principles. Made once (about 40 s on two CPU cores) under MODELS_ROOT,
 * where the service can register it like any local model.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { TASK_FAMILIES } from '../eval/families.ts'
import { syntheticSftCorpus } from '../eval/synthetic-corpus.ts'
import { makeTinyModel } from '../model/tiny.ts'
import { toJsonl } from '../sso/records.ts'
import { runTrainer } from '../sso/trainer.ts'
import type { RunTrainer } from '../sso/trainer-interface.ts'

export const DEMO_MODEL_NAME = 'demo-tiny-sft'

/**
 * Few examples seen many times: 16 per family and kind (240 rows) for 12 epochs (180 steps) teach
 * whole words; 40 for 4 epochs (150 steps) left half of them broken at a similar cost.
 */
const SFT_HYPERPARAMETERS = { lr: 6e-3, epochs: 12, batch_size: 16, weight_decay: 0, schedule: 'cosine' }
const SFT_EXAMPLES_PER_FAMILY = 16

export interface DemoModelOptions {
  /** Sees each SFT step's number and loss. */
  onStep?: (step: number, loss: number) => void
  /** How to run the SFT (the service passes its trainer thread, so its event loop stays free). */
  train?: RunTrainer
  /** Aborting stops the SFT at its next step and leaves no model folder. */
  signal?: AbortSignal
}

/** y+, y- and y0 sampled cooler than the default 0.7, so the tiny model's answers stay words. */
const COOL = { temperature: 0.3 }

/**
 * An `sso` run on the demo model whose reward accuracy and margins visibly rise within a minute on
 * two CPU cores (measured: docs/demo.md). Three epochs per iteration: the later passes over the
 * iteration's pairs show what the first one learnt; a small lr keeps the answers words. Deterministic,
 * so a run repeats its curves.
 * The model resource carries it as `recommended_hyperparameters`.
 */
export const DEMO_RECOMMENDED_HYPERPARAMETERS = {
  iterations: 2,
  queries_per_iteration: 16,
  epochs: 3,
  batch_size: 4,
  lr: 5e-4,
  max_new_tokens: 24,
  sampling: { chosen: COOL, rejected: COOL, raw: COOL },
  deterministic: true,
} as const

/** Returns the folder of the demo model below `modelsRoot`, training it first when it is missing. */
export async function ensureDemoModel(
  modelsRoot: string,
  { onStep = () => {}, train = runTrainer, signal }: DemoModelOptions = {},
): Promise<string> {
  const dir = path.join(modelsRoot, DEMO_MODEL_NAME)
  if (existsSync(path.join(dir, 'config.json'))) return dir
  await mkdir(modelsRoot, { recursive: true })
  const work = await mkdtemp(path.join(modelsRoot, `.${DEMO_MODEL_NAME}-`))
  try {
    await makeTinyModel(path.join(work, 'base'), { seed: 0 })
    const corpus = path.join(work, 'sft.jsonl')
    const families = Object.values(TASK_FAMILIES)
    await writeFile(
      corpus,
      toJsonl(
        syntheticSftCorpus(families, { perFamily: SFT_EXAMPLES_PER_FAMILY, plainGoodRate: 0.3, seed: 5 }),
      ),
    )
    await train(
      {
        runId: DEMO_MODEL_NAME,
        method: 'sft',
        modelDir: path.join(work, 'base'),
        datasetPaths: [corpus],
        hyperparameters: SFT_HYPERPARAMETERS,
        device: 'cpu',
        seed: 1,
        outputDir: path.join(work, 'out'),
      },
      {
        onMetrics: (b) => onStep(b.step, b.values.loss ?? Number.NaN),
        onEvent: () => {},
        onCheckpoint: () => {},
        control: () => (signal?.aborted ? 'cancel' : 'continue'),
      },
    )
    signal?.throwIfAborted()
    await rename(path.join(work, 'out', 'final'), dir) // one rename: the folder appears complete or not at all
    return dir
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
