/**
 * What a first run needs on a fresh service: a principle set made of the checkable task families'
 * principles and a queries dataset drawn from those families, so the samples view can show checker
 * verdicts. Used by `npm run demo` and by the CLI and dashboard tests.
 */
import { demoPrincipleSet, demoQueriesJsonl } from '../eval/demo-content.ts'
import type { ApiClient } from './api-client.ts'
import { resolveModelId } from './commands/runs.ts'
import { DEMO_RECOMMENDED_HYPERPARAMETERS } from './demo-model.ts'
import type { RunLike } from './run-summary.ts'

/** Settings that show curves within a minute on a CPU (the demo model's recommended ones). */
export const DEMO_HYPERPARAMETERS = DEMO_RECOMMENDED_HYPERPARAMETERS

export interface DemoResources {
  modelId: string
  principleSetId: string
  datasetId: string
}

/** `model`: a model's name or id on the service (the built-in tiny model when absent). */
export async function createDemoResources(
  client: ApiClient,
  seed = 1,
  model?: string,
): Promise<DemoResources> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const principles = demoPrincipleSet()
  const set = await client.post<{ id: string }>('/v1/principle-sets', {
    name: `${principles.name}-${stamp}`,
    description: 'principles of the checkable task families',
    principles: principles.principles,
  })
  const dataset = await client.json<{ id: string }>('POST', '/v1/datasets', {
    query: { name: `checkable-queries-${stamp}`, format: 'queries' },
    text: demoQueriesJsonl(12, seed),
  })
  return { modelId: await resolveModelId(client, model), principleSetId: set.id, datasetId: dataset.id }
}

export function demoRunBody(resources: DemoResources, hyperparameters: Record<string, unknown> = {}) {
  return {
    method: 'sso',
    model_id: resources.modelId,
    principle_set_id: resources.principleSetId,
    dataset_ids: [resources.datasetId],
    hyperparameters: { ...DEMO_HYPERPARAMETERS, ...hyperparameters },
    seed: 1,
    metadata: { source: 'demo' },
  }
}

export async function createDemoRun(client: ApiClient, resources: DemoResources): Promise<RunLike> {
  return client.post<RunLike>('/v1/runs', demoRunBody(resources))
}
