/**
 * The ready demo of a first start (DEMO_RESOURCES=true) on the real service: the model `demo` (made
 * in the background on the trainer thread), the dataset `demo-queries` and the principle set `demo`
 * registered once, the model carrying its recommended hyperparameters, and a short run made from
 * them on the demo model succeeding with reward accuracy recorded.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { DEMO_NAMES, ensureDemoResources } from '../../src/api/demo-resources.ts'
import { DEMO_RECOMMENDED_HYPERPARAMETERS } from '../../src/cli/demo-model.ts'
import { createLogger } from '../../src/log.ts'
import { until } from '../worker/until.ts'
import { type LiveService, startLiveService } from './live-service.ts'

interface Named {
  id: string
  name: string
}
type Model = Named & { kind: string; recommended_hyperparameters?: Record<string, unknown> }

let service: LiveService

const list = async <T extends Named>(collection: string) =>
  (await service.client.get<{ items: T[] }>(`/v1/${collection}?limit=200`)).items
const named = <T extends Named>(items: T[], name: string) => items.filter((i) => i.name === name)

before(async () => {
  service = await startLiveService({ demo: true })
})

after(async () => {
  await service?.stop()
})

test('a first start registers the demo dataset, principle set and model', { timeout: 900_000 }, async () => {
  assert.equal(named(await list('datasets'), DEMO_NAMES.dataset).length, 1)
  assert.equal(named(await list('principle-sets'), DEMO_NAMES.principleSet).length, 1)
  assert.ok(service.server.demo, 'the demo setup runs')
  await service.server.demo.modelReady
  const [model] = named(await list<Model>('models'), DEMO_NAMES.model)
  assert.ok(model, 'the demo model is registered once made')
  assert.equal(model.kind, 'local_hf')
  const one = await service.client.get<Model>(`/v1/models/${model.id}`)
  assert.deepEqual(one.recommended_hyperparameters, model.recommended_hyperparameters)
  // As set, not filled with every default by the response serializer.
  assert.deepEqual(one.recommended_hyperparameters, DEMO_RECOMMENDED_HYPERPARAMETERS)
})

test('a later start adds nothing', { timeout: 60_000 }, async () => {
  const { config, repos } = service.server.app
  const again = await ensureDemoResources({ config, repos, log: createLogger('silent') })
  assert.equal(again.making, false, 'the registered model is not made again')
  assert.equal(named(await list('datasets'), DEMO_NAMES.dataset).length, 1)
  assert.equal(named(await list('principle-sets'), DEMO_NAMES.principleSet).length, 1)
  assert.equal(named(await list('models'), DEMO_NAMES.model).length, 1)
})

test('a run from the recommended hyperparameters trains the demo model', { timeout: 600_000 }, async () => {
  const [model] = named(await list<Model>('models'), DEMO_NAMES.model)
  const [dataset] = named(await list('datasets'), DEMO_NAMES.dataset)
  const [set] = named(await list('principle-sets'), DEMO_NAMES.principleSet)
  const run = await service.client.post<{ id: string }>('/v1/runs', {
    method: 'sso',
    model_id: model.id,
    dataset_ids: [dataset.id],
    principle_set_id: set.id,
    // Short for the test: one iteration over a few queries, otherwise as recommended.
    hyperparameters: { ...model.recommended_hyperparameters, iterations: 1, queries_per_iteration: 4 },
  })
  const finished = await until(
    async () => {
      const r = await service.client.get<{ status: string; error?: unknown }>(`/v1/runs/${run.id}`)
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined
    },
    'the demo run to finish',
    580_000,
  )
  assert.equal(finished.status, 'succeeded', JSON.stringify(finished))
  const { series } = await service.client.get<{ series: { key: string; points: [number, number][] }[] }>(
    `/v1/runs/${run.id}/metrics?keys=rewards/accuracies`,
  )
  const accuracy = series.find((s) => s.key === 'rewards/accuracies')
  assert.ok(accuracy && accuracy.points.length > 0, 'reward accuracy is recorded')
  for (const [, v] of accuracy.points) assert.ok(v >= 0 && v <= 1)
})
