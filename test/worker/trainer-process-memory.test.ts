/**
 * A tiny-model sso run with the default hyperparameters (4 examples a step, 7 roles, 256 new tokens)
 * trains in its trainer process within 1 GB, and the process reports its peak as a run event. One pass
 * of the 28 rows of up to 544 tokens peaked at 2 GB; the planner's activation target splits the step.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { demoPrincipleSet, demoQueriesJsonl } from '../../src/eval/demo-content.ts'
import { makeTinyModel } from '../../src/model/index.ts'
import type { TrainerEvent } from '../../src/sso/trainer-interface.ts'
import { trainerInProcess } from '../../src/worker/trainer-process.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-trainer-memory-'))
})
after(() => rm(root, { recursive: true, force: true }))

test('a default tiny run peaks under 1 GB in its trainer process', { timeout: 300_000 }, async () => {
  const modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 0 })
  const queries = join(root, 'queries.jsonl')
  await writeFile(queries, demoQueriesJsonl(1, 1).split('\n').filter(Boolean).slice(0, 4).join('\n'))
  const events: TrainerEvent[] = []
  const result = await trainerInProcess({ nice: 0 })(
    {
      runId: 'memory',
      method: 'sso',
      modelDir,
      principleSet: demoPrincipleSet(),
      datasetPaths: [queries],
      hyperparameters: {},
      device: 'cpu',
      seed: 1,
      outputDir: join(root, 'out'),
      memoryBudgetBytes: 8 * 2 ** 30,
    },
    {
      onMetrics: () => {},
      onEvent: (e) => events.push(e),
      onCheckpoint: () => {},
      control: () => 'continue',
    },
  )
  assert.equal(result.status, 'succeeded')
  const plan = events.find((e) => e.message.startsWith('memory plan'))
  assert.ok(plan, 'the run reports its memory plan')
  const peak = events.find((e) => e.data?.peak_rss_bytes !== undefined)
  assert.ok(peak, 'the trainer process reports its peak memory')
  const bytes = peak.data!.peak_rss_bytes as number
  // above what Node and onnxruntime alone hold: the figure is the training's
  assert.ok(bytes > 200 * 2 ** 20, `peak ${bytes} bytes`)
  assert.ok(bytes < 2 ** 30, `peak ${Math.round(bytes / 2 ** 20)} MB (plan: ${plan.message})`)
})
