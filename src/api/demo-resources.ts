/**
 * The ready demo a first start offers (DEMO_RESOURCES=true): the principle set `demo`, the queries
 * dataset `demo-queries` and the model `demo` (the tiny model after a short SFT, so its samples read
 * as words) carrying the hyperparameters that visibly train it within minutes on a CPU. Each is
 * created only when no resource of its name exists, so later starts add nothing and a deleted one
 * comes back. They belong to the `default` project. The model's SFT takes about a minute, so it runs on a trainer thread in the background
 * and the model appears once it is written.
 */
import { DEMO_RECOMMENDED_HYPERPARAMETERS, ensureDemoModel } from '../cli/demo-model.ts'
import type { Config } from '../config.ts'
import { DEFAULT_PROJECT_ID } from '../db/project-scope.ts'
import type { Repositories } from '../db/repositories.ts'
import { demoPrincipleSet, demoQueriesJsonl } from '../eval/demo-content.ts'
import type { Logger } from '../log.ts'
import { validateDataset } from '../sso/records.ts'
import { trainerInThread } from '../worker/trainer-thread.ts'
import { storeDatasetContent } from './routes/v1/datasets.ts'
import { readHfConfig } from './routes/v1/models.ts'

export const DEMO_NAMES = { model: 'demo', dataset: 'demo-queries', principleSet: 'demo' } as const

/** Queries per task family in `demo-queries`. */
const QUERIES_PER_FAMILY = 12

export interface DemoSetup {
  /** True while the model `demo` is being made in the background. */
  readonly making: boolean
  /** Settles when the model `demo` is registered (or its making failed, which is logged). */
  modelReady: Promise<void>
  /** Stops a model still being made and waits for it. */
  stop(): Promise<void>
}

type Deps = { config: Config; repos: Repositories; log: Logger }

async function ensurePrincipleSet({ repos, log }: Deps): Promise<void> {
  if (await repos.principleSets.findByName(DEMO_NAMES.principleSet, DEFAULT_PROJECT_ID)) return
  const { principles } = demoPrincipleSet()
  await repos.principleSets.create({
    name: DEMO_NAMES.principleSet,
    description: 'the principles of the checkable task families (demo)',
    principles,
    concision: null,
    projectId: DEFAULT_PROJECT_ID,
  })
  log.info({ name: DEMO_NAMES.principleSet }, 'demo principle set registered')
}

async function ensureQueries({ config, repos, log }: Deps): Promise<void> {
  if (await repos.datasets.findByName(DEMO_NAMES.dataset, DEFAULT_PROJECT_ID)) return
  const text = demoQueriesJsonl(QUERIES_PER_FAMILY, 1)
  const { rows } = validateDataset('queries', text)
  const { file, hash } = await storeDatasetContent(config.dataDir, text)
  await repos.datasets.create({
    name: DEMO_NAMES.dataset,
    format: 'queries',
    contentHash: hash,
    lineCount: rows.length,
    bytes: Buffer.byteLength(text),
    path: file,
    projectId: DEFAULT_PROJECT_ID,
  })
  log.info({ name: DEMO_NAMES.dataset, queries: rows.length }, 'demo queries dataset registered')
}

async function registerModel({ config, repos, log }: Deps, signal: AbortSignal): Promise<void> {
  const started = Date.now()
  const dir = await ensureDemoModel(config.modelsRoot, {
    train: trainerInThread({ nice: config.TRAINING_NICE }),
    signal,
  })
  if (await repos.models.findByName(DEMO_NAMES.model)) return // another API process was quicker
  const hfConfig = await readHfConfig(dir, DEMO_NAMES.model)
  await repos.models.create({
    name: DEMO_NAMES.model,
    kind: 'local_hf',
    path: dir,
    config: hfConfig,
    recommendedHyperparameters: { ...DEMO_RECOMMENDED_HYPERPARAMETERS },
    projectId: DEFAULT_PROJECT_ID,
  })
  log.info(
    { name: DEMO_NAMES.model, seconds: Math.round((Date.now() - started) / 1000) },
    'demo model registered',
  )
}

/** Registers what is missing; the model's making continues after this returns (see `modelReady`). */
export async function ensureDemoResources(deps: Deps): Promise<DemoSetup> {
  await ensurePrincipleSet(deps)
  await ensureQueries(deps)
  if (await deps.repos.models.findByName(DEMO_NAMES.model))
    return { making: false, modelReady: Promise.resolve(), stop: async () => {} }
  deps.log.info(
    { name: DEMO_NAMES.model, folder: deps.config.modelsRoot },
    'making the demo model (a short SFT of the tiny model, about a minute); it appears in the model list when ready',
  )
  const abort = new AbortController()
  let making = true
  const modelReady = registerModel(deps, abort.signal)
    .catch((err) => {
      if (!abort.signal.aborted) deps.log.error({ err }, 'the demo model could not be made')
    })
    .finally(() => {
      making = false
    })
  return {
    get making() {
      return making
    },
    modelReady,
    async stop() {
      abort.abort()
      await modelReady
    },
  }
}
