/**
 * micro_batch_size: a step's examples split into micro-batches whose gradients are accumulated give
 * the same update as the whole batch in one pass (a tiny model, DPO, one optimizer step per setting).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { readSafetensors } from '../../src/model/safetensors.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { openModelPolicy } from '../../src/sso/model-adapter.ts'
import { Rng } from '../../src/sso/rng.ts'
import { type Example, makePhase, microBatchSize, runPhase } from '../../src/sso/training-phase.ts'

let root: string
let modelDir: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sso-micro-'))
  modelDir = join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 4 })
})
after(() => rm(root, { recursive: true, force: true }))

const answers = ['Paris.', 'The capital of France is Paris.', 'Rome, I think.', 'It is Paris, of course.']
const examples: Example[] = answers.map((a, i) => ({
  rows: {
    plain_chosen: { prompt: { user: `Question ${i}: what is the capital of France?` }, response: a },
    plain_rejected: {
      prompt: { user: `Question ${i}: what is the capital of France?` },
      response: 'Berlin.',
    },
  },
  ref: {
    plain_chosen: { sum: -20 - i, mean: -2, count: 10 },
    plain_rejected: { sum: -15, mean: -3, count: 5 },
  },
}))

/** One DPO step over the four examples with `micro` examples per pass; the trained tensors after it. */
async function trainedTensors(micro: number | 'auto', name: string) {
  const hp = resolveHyperparameters('dpo', {
    batch_size: 4,
    micro_batch_size: micro,
    lr: 1e-2,
    weight_decay: 0,
    warmup_ratio: 0,
    schedule: 'constant',
    max_grad_norm: 0,
  })
  const policy = await openModelPolicy({
    modelDir,
    device: 'cpu',
    finetuning: 'full',
    lora: hp.lora,
    optimizer: { lr: hp.lr, betas: hp.adam_betas, eps: hp.adam_eps, weightDecay: 0, maxGradNorm: 0 },
    maxPromptTokens: 64,
    seed: 1,
    deterministic: true,
  })
  try {
    const phase = makePhase('p', 0, 'preference', examples, hp, Rng.fromSeed(3))
    const metrics: Record<string, number>[] = []
    // the real policy, with the sizes of the micro-batches each step hands it recorded
    const passes: number[][] = []
    const recording = Object.create(policy) as typeof policy
    recording.trainStep = (objective, loss, micro, lr) => {
      passes.push(micro.map((b) => b.rows.plain_chosen!.length))
      return policy.trainStep(objective, loss, micro, lr)
    }
    await runPhase(recording, phase, hp, 0, {
      control: () => 'continue',
      afterStep: async (_, values) => {
        metrics.push(values)
      },
    })
    const dir = join(root, name)
    await policy.save(dir)
    return { tensors: await readSafetensors(join(dir, 'policy_state.safetensors')), metrics, passes }
  } finally {
    await policy.dispose()
  }
}

test('micro-batch size: the largest divisor of the group not above the limit', () => {
  assert.equal(microBatchSize(8, 'auto'), 8)
  assert.equal(microBatchSize(8, 3), 2)
  assert.equal(microBatchSize(6, 4), 3)
  assert.equal(microBatchSize(7, 4), 1)
  assert.equal(microBatchSize(4, 16), 4)
})

test('micro-batches of 2 and of 1 give the update of the whole batch of 4', {
  timeout: 120_000,
}, async () => {
  const whole = await trainedTensors('auto', 'whole')
  assert.deepEqual(whole.passes, [[4]])
  const key = 'model.layers.0.self_attn.q_proj.weight'
  const before = (await readSafetensors(join(modelDir, 'model.safetensors'))).get(key)!.data
  const moved = whole.tensors.get(key)!.data.some((x, i) => Math.abs(x - before[i]) > 1e-4)
  assert.ok(moved, 'the step changes the weights')
  for (const micro of [2, 1]) {
    const split = await trainedTensors(micro, `micro-${micro}`)
    assert.deepEqual(split.passes, [Array(4 / micro).fill(micro)])
    assert.ok(
      Math.abs(split.metrics[0].loss - whole.metrics[0].loss) < 1e-5,
      `loss with micro-batches of ${micro}`,
    )
    assert.ok(
      Math.abs(split.metrics[0].grad_norm - whole.metrics[0].grad_norm) < 1e-4 * whole.metrics[0].grad_norm,
    )
    // the first moment after one step is (1 - beta1) times the gradient: compare it, relative to its
    // largest entry (the weights themselves move by about lr * sign(g) where g is near zero)
    for (const [name, t] of whole.tensors) {
      if (!name.startsWith('optim.exp_avg.')) continue
      const other = split.tensors.get(name)!.data
      const scale = t.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
      const worst = t.data.reduce((m, x, i) => Math.max(m, Math.abs(x - other[i])), 0)
      assert.ok(worst <= 1e-4 * scale, `${name} with micro-batches of ${micro}: off by ${worst} of ${scale}`)
    }
  }
})
