/**
 * The demo's starting policy: the tiny model after a short SFT on the checkable-task corpus, in which
 * the principle in the system message decides the behaviour. A random-weight model writes noise, so
 * its samples would show nothing; this one answers in words, and SSO then visibly moves its plain
 * answers toward the good principles. Made once (about half a minute on a CPU) under MODELS_ROOT,
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

export const DEMO_MODEL_NAME = 'demo-tiny-sft'

const SFT_HYPERPARAMETERS = { lr: 3e-3, epochs: 4, batch_size: 16, weight_decay: 0, schedule: 'cosine' }

/**
 * Returns the folder of the demo model below `modelsRoot`, training it first when it is missing.
 * `onStep` sees each SFT step's number and loss.
 */
export async function ensureDemoModel(
  modelsRoot: string,
  onStep: (step: number, loss: number) => void = () => {},
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
      toJsonl(syntheticSftCorpus(families, { perFamily: 40, plainGoodRate: 0.3, seed: 5 })),
    )
    await runTrainer(
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
        control: () => 'continue',
      },
    )
    await rename(path.join(work, 'out', 'final'), dir) // one rename: the folder appears complete or not at all
    return dir
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
