import { createApiKeysRepository } from './api-keys-repository.ts'
import { createCheckpointsRepository } from './checkpoints-repository.ts'
import type { Db } from './client.ts'
import { createDatasetsRepository } from './datasets-repository.ts'
import { createEventsRepository } from './events-repository.ts'
import { createMetricsRepository } from './metrics-repository.ts'
import { createModelsRepository } from './models-repository.ts'
import { createPrincipleSetsRepository } from './principle-sets-repository.ts'
import { createProjectsRepository } from './projects-repository.ts'
import { createRunsRepository } from './runs-repository.ts'
import { createSamplesRepository } from './samples-repository.ts'
import { createWorkersRepository } from './workers-repository.ts'

/** Every repository over one handle: the client, or a transaction so several writes commit together. */
export function createRepositories(db: Db) {
  return {
    apiKeys: createApiKeysRepository(db),
    checkpoints: createCheckpointsRepository(db),
    datasets: createDatasetsRepository(db),
    events: createEventsRepository(db),
    metrics: createMetricsRepository(db),
    models: createModelsRepository(db),
    principleSets: createPrincipleSetsRepository(db),
    projects: createProjectsRepository(db),
    runs: createRunsRepository(db),
    samples: createSamplesRepository(db),
    workers: createWorkersRepository(db),
  }
}
export type Repositories = ReturnType<typeof createRepositories>
