import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { maxRelDiff } from '../../bench/compare.ts'
import { type HostTensor, neg, type Provider, reduceMean } from '../../src/engine/index.ts'
import { familyPrincipleSet, TASK_FAMILIES } from '../../src/eval/families.ts'
import { packRows, scoringFeeds } from '../../src/model/batch.ts'
import type { ChatMessage } from '../../src/model/chat-template.ts'
import type { PolicyLoss } from '../../src/model/graphs.ts'
import { Policy } from '../../src/model/policy.ts'
import { readSafetensors } from '../../src/model/safetensors.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'
import { resolveHyperparameters } from '../../src/sso/hyperparameters.ts'
import { openModelPolicy } from '../../src/sso/model-adapter.ts'
import { toJsonl } from '../../src/sso/records.ts'
import { Rng } from '../../src/sso/rng.ts'
import { lossHyperparameters } from '../../src/sso/training-phase.ts'
import { itPassesUnderSoftwareVulkan, webgpuTestMode } from '../helpers/providers.ts'
import { trainToEnd } from '../sso/helpers/train.ts'

const { skip, rerun } = await webgpuTestMode('WebGPU policy tests')

const question: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }]
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
const lora = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }

/**
 * Three SFT steps (the second in two micro-batches, the third as a prompt tree), the reference frozen (and scored) before the
 * second and the third as between SSO iterations, then the response log-probs, a greedy continuation and the exported state (weights or
 * adapters with their AdamW moments, read back from the device on WebGPU), on one provider. Weights
 * change between runs that read them: a device copy left stale would show.
 */
async function trainAndScore(modelDir: string, provider: Provider, withLora: boolean) {
  const policy = await Policy.load(modelDir, { provider, seed: 3, lora: withLora ? lora : undefined })
  const row = policy.tokenizeExchange(question, 'Paris.')
  const losses: number[] = []
  const logp: number[] = []
  for (let i = 0; i < 3; i++) {
    if (i > 0) {
      await policy.freezeReference()
      logp.push(...(await policy.logprobs([row], 'reference')).sum)
    }
    // One batch runs as one fused graph on WebGPU, two micro-batches through the accumulators; the
    // third step packs its two rows as one prompt tree.
    const batches = i === 1 ? [{ rows: [row] }, { rows: [row] }] : { rows: [row, row], maxBranches: i }
    const r = await policy.trainStep(batches, { lr: 1e-2, loss: sft, maxGradNorm: 1 })
    losses.push(r.loss, r.gradNorm)
  }
  logp.push(...(await policy.logprobs([row])).sum)
  const [text] = await policy.generate([question], {
    maxNewTokens: 6,
    temperature: 0,
    topP: 1,
    topK: 0,
    seed: 0,
  })
  const state = await policy.exportState()
  await policy.dispose()
  return { losses, logp, tokens: text.tokens, tokenLogprobs: text.logprobs, state: state.tensors }
}

const bytes = (feeds: Record<string, HostTensor>) =>
  Object.values(feeds).reduce((n, t) => n + t.data.byteLength, 0)

describe('Policy on WebGPU', { skip, timeout: 300_000 }, () => {
  if (rerun) return itPassesUnderSoftwareVulkan(fileURLToPath(import.meta.url), 6)

  let root: string
  let modelDir: string
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'policy-webgpu-'))
    modelDir = path.join(root, 'tiny')
    await makeTinyModel(modelDir, { seed: 5 })
  })
  after(() => rm(root, { recursive: true, force: true }))

  for (const withLora of [false, true]) {
    it(`trains, scores and generates like the CPU (${withLora ? 'LoRA' : 'full fine-tuning'})`, async () => {
      const cpu = await trainAndScore(modelDir, 'cpu', withLora)
      const gpu = await trainAndScore(modelDir, 'webgpu', withLora)
      assert.ok(maxRelDiff(gpu.losses, cpu.losses) < 1e-3, `loss/grad norm: ${gpu.losses} vs ${cpu.losses}`)
      assert.ok(maxRelDiff(gpu.logp, cpu.logp) < 1e-3, `log-probs: ${gpu.logp} vs ${cpu.logp}`)
      assert.deepEqual(gpu.tokens, cpu.tokens)
      // WebGPU picks greedy tokens on the device, with their log-probs: the CPU's from the logits row.
      assert.ok(
        maxRelDiff(gpu.tokenLogprobs, cpu.tokenLogprobs) < 1e-3,
        `greedy log-probs: ${gpu.tokenLogprobs} vs ${cpu.tokenLogprobs}`,
      )
      assert.deepEqual([...gpu.state.keys()].sort(), [...cpu.state.keys()].sort())
      // The moments carry the gradients and agree closely. A weight moves by about lr·sign(g) in
      // Adam's first steps after a (re)start, so where |g| is at rounding level the two providers
      // may move it either way: weights are compared more loosely.
      for (const [name, t] of cpu.state) {
        const e = maxRelDiff(gpu.state.get(name)!.data, t.data)
        const tolerance = name.startsWith('optim.') ? 1e-3 : 5e-2
        assert.ok(e < tolerance, `${name} differs by ${e}`)
      }
    })
  }

  for (const withLora of [false, true]) {
    it(`moves only the batch and scalars per step, and per decoded token its ids and mask up, the greedy pick or the logits down (${withLora ? 'LoRA' : 'full fine-tuning'})`, async () => {
      const policy = await Policy.load(modelDir, {
        provider: 'webgpu',
        seed: 3,
        lora: withLora ? lora : undefined,
      })
      try {
        const rows = [policy.tokenizeExchange(question, 'Paris.'), policy.tokenizeExchange(question, 'Lyon!')]
        // one prompt, two responses: a prompt tree
        const step = () => policy.trainStep({ rows, maxBranches: 2 }, { lr: 1e-2, loss: sft, maxGradNorm: 1 })
        const warmUp = await step()
        const packed = packRows(rows, { padding: 'right', padId: 0, maxBranches: 2 })
        assert.equal(packed.rows, 1)
        const batch = bytes(scoringFeeds(policy.config, packed, 'float32'))
        // The first step uploads the weights, moments and accumulators: far more than a batch.
        assert.ok(
          warmUp.transfers.hostToDevice > batch + 1024,
          `warm-up moved ${warmUp.transfers.hostToDevice} B`,
        )
        for (let i = 0; i < 2; i++) {
          const { transfers } = await step()
          assert.ok(
            transfers.hostToDevice >= batch,
            `the batch (${batch} B) went up: ${transfers.hostToDevice} B`,
          )
          assert.ok(
            transfers.hostToDevice <= batch + 1024,
            `up: ${transfers.hostToDevice} B, batch ${batch} B`,
          )
          assert.ok(transfers.deviceToHost <= 1024, `down: ${transfers.deviceToHost} B`)
        }

        const prompts = ['Once upon a time', 'The capital of France is']
        const cfg = policy.config
        const b = prompts.length
        const width = Math.max(...prompts.map((p) => policy.model.tokenizer.encode(p).length))
        const greedy = { maxNewTokens: 6, temperature: 0, topP: 1, topK: 0, seed: 0 }
        const sampled = { ...greedy, temperature: 0.7, topP: 0.9 }
        await policy.generate(prompts, greedy)
        // Down per decoded token: greedy, each row's token (int64) and its log-prob (float32), picked
        // on the device; sampling, the rows of logits it draws from.
        for (const [opts, down] of [
          [greedy, (8 + 4) * b],
          [sampled, 4 * b * cfg.vocab_size],
        ] as const) {
          const gens = await policy.generate(prompts, opts)
          const { runs } = policy.lastGeneration!
          assert.ok(runs.length >= 2, `${runs.length} decode runs`)
          // Run j after the prefill: one id per row (int64), its RoPE cos and sin, the mask over W + j keys.
          for (let j = 1; j < runs.length; j++) {
            const up = 8 * b + 2 * 4 * b * cfg.head_dim + 4 * b * (width + j)
            assert.ok(
              runs[j].hostToDevice <= up,
              `decode run ${j} moved ${runs[j].hostToDevice} B up, allowed ${up}`,
            )
            assert.ok(
              runs[j].deviceToHost <= down,
              `decode run ${j} (temperature ${opts.temperature}) moved ${runs[j].deviceToHost} B down, allowed ${down}`,
            )
          }
          // A sampled row may draw the end token first; greedy rows of this model go on.
          if (opts.temperature === 0) assert.ok(gens.every((g) => g.tokens.length > 0))
        }
      } finally {
        await policy.dispose()
      }
    })
  }

  it('reports transfers in run metrics, saves the device state and restarts the optimizer (the run-facing adapter)', async () => {
    const policy = await openModelPolicy({
      modelDir,
      device: 'webgpu',
      finetuning: 'full',
      lora,
      optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 },
      maxPromptTokens: 64,
      seed: 1,
    })
    try {
      const row = { prompt: { user: 'Say hello.' }, response: 'Hello there.' }
      const hp = lossHyperparameters(resolveHyperparameters('sft', {}))
      const step = await policy.trainStep('sft', hp, [{ rows: { plain_chosen: [row, row] }, ref: {} }], 1e-2)
      assert.ok(step.metrics['transfer/host_to_device_bytes'] > 0)
      assert.ok(step.metrics['transfer/device_to_host_bytes'] > 0)
      await policy.generate([{ user: 'Say hello.' }], {
        maxNewTokens: 4,
        temperature: 0,
        topP: 1,
        topK: 0,
        seed: 0,
      })
      const generated = policy.generationTransfers!()
      assert.ok(generated.tokens > 0 && generated.deviceToHost > 0)

      const saved = async (name: string) => {
        await policy.save(path.join(root, name))
        return readSafetensors(path.join(root, name, 'policy_state.safetensors'))
      }
      const key = 'model.norm.weight'
      const trained = await saved('trained')
      assert.ok(
        [...trained.get(`optim.exp_avg.${key}`)!.data].some((x) => x !== 0),
        'moments read back from the device',
      )
      await policy.resetOptimizer()
      const reset = await saved('reset')
      assert.ok([...reset.get(`optim.exp_avg.${key}`)!.data].every((x) => x === 0))
      assert.deepEqual([...reset.get(key)!.data], [...trained.get(key)!.data])
    } finally {
      await policy.dispose()
    }
  })

  it('an SSO run on WebGPU records bytes per step and per generated token in its metrics', async () => {
    const families = [TASK_FAMILIES.politeness, TASK_FAMILIES.format]
    const rng = Rng.fromSeed(8)
    const queries = path.join(root, 'queries.jsonl')
    const rows = Array.from({ length: 6 }, (_, i) => ({
      prompt: families[i % 2].makePrompt(rng),
      features: [families[i % 2].principle.feature],
    }))
    await writeFile(queries, toJsonl(rows))
    const metrics = await trainToEnd({
      runId: 'webgpu',
      method: 'sso',
      modelDir,
      principleSet: familyPrincipleSet(families),
      datasetPaths: [queries],
      hyperparameters: { iterations: 1, batch_size: 2, max_new_tokens: 4, generation_batch_size: 6 },
      device: 'webgpu',
      seed: 11,
      outputDir: path.join(root, 'run'),
    })
    const steps = metrics.filter((m) => m.values.loss !== undefined)
    assert.ok(steps.length > 0)
    for (const m of steps) assert.ok(m.values['transfer/host_to_device_bytes'] > 0, JSON.stringify(m.values))
    const iteration = metrics.find((m) => m.values['iteration/generated'] !== undefined)!.values
    assert.ok(iteration['transfer/generated_token_device_to_host_bytes'] > 0, JSON.stringify(iteration))
  })
})
