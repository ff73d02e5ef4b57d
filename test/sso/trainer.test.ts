/**
 * End to end on a tiny model: one short SSO iteration produces the step and iteration metrics, saved
 * samples, checkpoints and a final model; a run paused mid-iteration and resumed from its checkpoint
 * continues with the same loss curve as the uninterrupted run.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { familyPrincipleSet, TASK_FAMILIES } from '../../src/eval/families.ts'
import { makeTinyModel } from '../../src/model/index.ts'
import { toJsonl, validateDataset } from '../../src/sso/records.ts'
import { Rng } from '../../src/sso/rng.ts'
import { runTrainer } from '../../src/sso/trainer.ts'
import type {
  CheckpointInfo,
  ControlSignal,
  MetricsBatch,
  TrainerCallbacks,
  TrainerEvent,
  TrainerJob,
} from '../../src/sso/trainer-interface.ts'

let root: string
let modelDir: string
let queries: string
const families = [TASK_FAMILIES.politeness, TASK_FAMILIES.format]

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-trainer-'))
  modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 3 })
  const rng = Rng.fromSeed(8)
  queries = join(root, 'queries.jsonl')
  const rows = Array.from({ length: 10 }, (_, i) => {
    const f = families[i % 2]
    return { prompt: f.makePrompt(rng), features: [f.principle.feature] }
  })
  await writeFile(queries, toJsonl(rows))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

const HP = {
  iterations: 1,
  batch_size: 2,
  lr: 1e-3,
  weight_decay: 0,
  max_new_tokens: 6,
  generation_batch_size: 10,
  features_per_query: 1,
  concision_probability: 0,
  checkpoint_every: 2,
  deterministic: true,
  sampling: {
    chosen: { temperature: 1, top_p: 1 },
    rejected: { temperature: 1, top_p: 1 },
    raw: { temperature: 1, top_p: 1 },
  },
}

function job(outputDir: string, resumeFrom?: string): TrainerJob {
  return {
    runId: 'e2e',
    method: 'sso',
    modelDir,
    principleSet: familyPrincipleSet(families),
    datasetPaths: [queries],
    hyperparameters: HP,
    device: 'cpu',
    seed: 11,
    outputDir,
    resumeFrom,
  }
}

function recorder(control: (steps: number) => ControlSignal = () => 'continue') {
  const steps: MetricsBatch[] = []
  const iterations: MetricsBatch[] = []
  const events: TrainerEvent[] = []
  const checkpoints: CheckpointInfo[] = []
  const callbacks: TrainerCallbacks = {
    onMetrics: (b) => (b.values.loss !== undefined ? steps : iterations).push(b),
    onEvent: (e) => events.push(e),
    onCheckpoint: (c) => {
      checkpoints.push(c)
    },
    control: () => control(steps.length),
  }
  return { steps, iterations, events, checkpoints, callbacks }
}

const STEP_METRICS = [
  'loss',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'rewards/accuracies',
  'logps/chosen',
  'logps/rejected',
  'sso/w_mean',
  'sso/g',
  'sso/l_main',
  'sso/on_policy_chosen',
  'sso/on_policy_rejected',
  'sso/gap',
  'learning_rate',
  'grad_norm',
  'tokens_per_second',
  'lengths/chosen',
  'lengths/rejected',
]

test('one SSO iteration on a tiny model: metrics, samples, checkpoints, final model; pause and resume match', async () => {
  const full = recorder()
  const fullDir = join(root, 'full')
  const result = await runTrainer(job(fullDir), full.callbacks)
  assert.equal(result.status, 'succeeded')
  assert.ok(full.steps.length >= 3, `expected at least 3 steps, got ${full.steps.length}`)
  for (const name of STEP_METRICS) {
    for (const s of full.steps)
      assert.ok(Number.isFinite(s.values[name]), `step ${s.step}: ${name} = ${s.values[name]}`)
  }
  const it = full.iterations[0].values
  for (const name of [
    'iteration/generated',
    'iteration/examples',
    'lengths/chosen_chars',
    'signal_accuracy',
    'signal_reversed',
  ]) {
    assert.ok(Number.isFinite(it[name]), `${name} = ${it[name]}`)
  }
  for (const phase of ['loading', 'generating', 'scoring', 'training', 'checkpointing']) {
    assert.ok(
      full.events.some((e) => e.type === 'phase' && e.phase === phase),
      `no '${phase}' event`,
    )
  }
  assert.ok(full.events.some((e) => e.type === 'progress' && e.phase === 'generating'))
  assert.ok(full.events.some((e) => e.type === 'iteration_end'))
  const samples = await readFile(join(fullDir, 'samples', 'iteration-1.jsonl'), 'utf8')
  assert.deepEqual(validateDataset('sso_records', samples).errors, [])
  assert.ok(full.checkpoints.length >= 2)
  for (const c of full.checkpoints) assert.ok((await readdir(c.dir)).includes('trainer-state.json'))
  assert.ok((await readdir(join(fullDir, 'final'))).includes('config.json'))

  // pause after the second step, then resume from the checkpoint written on pause
  const paused = recorder((steps) => (steps === 2 ? 'pause' : 'continue'))
  const pausedDir = join(root, 'paused')
  const first = await runTrainer(job(pausedDir), paused.callbacks)
  assert.equal(first.status, 'paused')
  assert.equal(first.finalStep, 2)
  assert.ok(first.lastCheckpoint)
  const resumed = recorder()
  const second = await runTrainer(job(pausedDir, first.lastCheckpoint.dir), resumed.callbacks)
  assert.equal(second.status, 'succeeded')
  const curve = [...paused.steps, ...resumed.steps].map((s) => [s.step, s.values.loss])
  const reference = full.steps.map((s) => [s.step, s.values.loss])
  assert.equal(curve.length, reference.length)
  // deterministic (single-threaded) runs repeat the same float32 operations; a resume must too
  for (const [i, [step, loss]] of curve.entries()) {
    assert.equal(step, reference[i][0])
    assert.ok(
      Math.abs(loss - reference[i][1]) <= 1e-6 * Math.abs(reference[i][1]),
      `step ${step}: ${loss} vs ${reference[i][1]}`,
    )
  }
})
