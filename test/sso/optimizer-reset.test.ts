/** A fresh optimizer per iteration: resetOptimizer zeroes the AdamW moments and step and keeps the weights. */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { readSafetensors } from '../../src/model/safetensors.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { openModelPolicy } from '../../src/sso/model-adapter.ts'
import { lossHyperparameters } from '../../src/sso/training-phase.ts'

test('resetOptimizer: moments and step back to zero, weights unchanged', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sso-reset-'))
  const modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 2 })
  const policy = await openModelPolicy({
    modelDir,
    device: 'cpu',
    finetuning: 'full',
    lora: { rank: 4, alpha: 8, targets: ['q_proj'] },
    optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 },
    maxPromptTokens: 64,
    seed: 1,
  })
  try {
    const row = { prompt: { user: 'Say hello.' }, response: 'Hello there.' }
    await policy.freezeReference()
    const loss = lossHyperparameters(resolveHyperparameters('sft', {}))
    await policy.trainStep('sft', loss, [{ rows: { plain_chosen: [row] }, ref: {} }], 1e-2)
    const state = async (name: string) => {
      const dir = join(root, name)
      await policy.save(dir)
      const meta = JSON.parse(await readFile(join(dir, 'policy_state.json'), 'utf8'))
      return {
        step: meta.step as number,
        tensors: await readSafetensors(join(dir, 'policy_state.safetensors')),
      }
    }
    const trained = await state('trained')
    const key = 'model.norm.weight'
    const moment = (s: typeof trained) => [...s.tensors.get(`optim.exp_avg.${key}`)!.data]
    assert.equal(trained.step, 1)
    assert.ok(
      moment(trained).some((x) => x !== 0),
      'one step leaves non-zero moments',
    )
    await policy.resetOptimizer()
    const reset = await state('reset')
    assert.equal(reset.step, 0)
    assert.ok(moment(reset).every((x) => x === 0))
    assert.ok([...reset.tensors.get(`optim.exp_avg_sq.${key}`)!.data].every((x) => x === 0))
    assert.deepEqual([...reset.tensors.get(key)!.data], [...trained.tensors.get(key)!.data])
    assert.ok(reset.tensors.has(`reference.${key}`), 'the frozen reference survives')
  } finally {
    await policy.dispose()
    await rm(root, { recursive: true, force: true })
  }
})
