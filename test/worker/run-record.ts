/**
 * What a run must have kept however its training was interrupted: every metric once (rows and frames
 * agree, each training step and each iteration complete), a stream without gaps, and a checkpoint
 * row for every step a checkpoint folder was written at.
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { runOutputDir } from '../../src/config.ts'
import type { TestApp } from '../helpers/build-app.ts'
import { until } from './until.ts'

export async function assertRunRecordWhole(app: TestApp, runId: string, iterations: number): Promise<void> {
  const run = (await app.repos.runs.findById(runId))!
  const frames = await app.repos.events.listAfter(runId, 0, 1_000_000)
  assert.deepEqual(
    frames.map((f) => f.seq),
    frames.map((_, i) => i + 1),
    'stream seqs are 1..n without a gap',
  )

  const series = await app.repos.metrics.history(runId, {})
  const rows = new Map(series.map((s) => [s.key, new Map(s.points.map(([step, value]) => [step, value]))]))
  const streamed = new Set<string>()
  for (const f of frames.filter((f) => f.type === 'metrics')) {
    for (const [key, value] of Object.entries(f.data.values as Record<string, number>)) {
      const id = `${f.step}/${key}`
      assert.ok(!streamed.has(id), `metric ${id} is streamed once`)
      streamed.add(id)
      if (Number.isFinite(value)) assert.ok(rows.get(key)?.has(f.step), `metric ${id} has its row`)
    }
  }
  for (const [key, points] of rows) {
    for (const step of points.keys())
      assert.ok(streamed.has(`${step}/${key}`), `row ${step}/${key} was streamed`)
  }
  const trainingSteps = [...(rows.get('learning_rate')?.keys() ?? [])]
  assert.deepEqual(
    trainingSteps,
    trainingSteps.map((_, i) => i + 1),
    'a learning_rate row for every training step',
  )
  assert.equal(trainingSteps.at(-1), run.current_step, 'up to the last step')
  const iterationRows = await app.prisma.metric.findMany({
    where: { runId, key: { startsWith: 'iteration/' } },
    select: { key: true, iteration: true },
  })
  for (const key of new Set(iterationRows.map((r) => r.key))) {
    assert.deepEqual(
      iterationRows
        .filter((r) => r.key === key)
        .map((r) => r.iteration)
        .sort(),
      Array.from({ length: iterations }, (_, i) => i + 1),
      `${key} for every iteration`,
    )
  }

  const folders = await readdir(path.join(runOutputDir(app.config, runId), 'checkpoints'))
  const writtenAt = new Set(folders.filter((f) => f.startsWith('step-')).map((f) => Number(f.split('-')[1])))
  const checkpoints = await app.repos.checkpoints.listByRun(runId)
  assert.deepEqual(
    checkpoints.map((c) => c.step),
    [...writtenAt].sort((a, b) => a - b),
    'a checkpoint row for every step a checkpoint was written at',
  )
  const ids = new Set(checkpoints.map((c) => c.id))
  for (const f of frames.filter((f) => f.type === 'checkpoint'))
    assert.ok(ids.has(f.data.checkpoint_id as string), `checkpoint frame ${f.seq} names a stored checkpoint`)
}

/** The run once it succeeded or failed (within five minutes). */
export function finishedRun(app: TestApp, runId: string) {
  return until(
    async () => {
      const r = await app.repos.runs.findById(runId)
      return r?.status === 'succeeded' || r?.status === 'failed' ? r : undefined
    },
    'the run to finish',
    300_000,
  )
}
