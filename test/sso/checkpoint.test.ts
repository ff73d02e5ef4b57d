import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { readCheckpoint, type TrainerState, writeCheckpoint } from '../../src/sso/checkpoint.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { Rng } from '../../src/sso/rng.ts'
import { makePhase } from '../../src/sso/training-phase.ts'

test('a checkpoint folder appears complete under its final name and round-trips state and phase data', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ckpt-'))
  try {
    const hp = resolveHyperparameters('sft', { batch_size: 2, epochs: 2 })
    const rng = Rng.fromSeed(4)
    const examples = [0, 1, 2].map((i) => ({
      rows: { plain_chosen: { prompt: { user: `q${i}` }, response: `a${i}` } },
      ref: { plain_chosen: { sum: -i - 1, mean: (-i - 1) / 2, count: 2 } },
    }))
    const data = makePhase('offline', 1, 'sft', examples, hp, rng)
    assert.equal(data.order.length, 6)
    assert.deepEqual([...data.order.slice(0, 3)].sort(), [0, 1, 2])
    const state: TrainerState = {
      version: 1,
      method: 'sft',
      iteration: 1,
      stage: 'train',
      globalStep: 2,
      rng: rng.state(),
      phase: { name: 'offline', stepsDone: 2 },
      hasGenerator: false,
    }
    const saved = await writeCheckpoint(root, state, data, {})
    assert.deepEqual(await readdir(root), ['step-0000002-iter-1-train'])
    assert.ok(saved.bytes > 0)
    const loaded = await readCheckpoint(saved.dir)
    assert.deepEqual(loaded.state, state)
    assert.deepEqual(loaded.phaseData, JSON.parse(JSON.stringify(data)))
    assert.equal(loaded.modelDir('policy'), join(saved.dir, 'policy'))
    await assert.rejects(readCheckpoint(join(root, 'missing')), /has no readable trainer-state.json/)
  } finally {
    await rm(root, { recursive: true })
  }
})
