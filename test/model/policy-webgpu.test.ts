import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { maxRelDiff } from '../../bench/compare.ts'
import { neg, type Provider, reduceMean } from '../../src/engine/index.ts'
import type { ChatMessage } from '../../src/model/chat-template.ts'
import type { PolicyLoss } from '../../src/model/graphs.ts'
import { Policy } from '../../src/model/policy.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'
import { itPassesUnderSoftwareVulkan, webgpuTestMode } from '../helpers/providers.ts'

const { skip, rerun } = await webgpuTestMode('WebGPU policy tests')

const question: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }]
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
const lora = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }

/**
 * Three SFT steps, the reference frozen (and scored) before the second and the third as between SSO
 * iterations, then the response log-probs and a greedy continuation, on one provider. Weights change
 * between runs that read them: a device copy left stale would show.
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
    const r = await policy.trainStep({ rows: [row, row] }, { lr: 1e-2, loss: sft, maxGradNorm: 1 })
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
  await policy.dispose()
  return { losses, logp, tokens: text.tokens }
}

describe('Policy on WebGPU', { skip }, () => {
  if (rerun) return itPassesUnderSoftwareVulkan(fileURLToPath(import.meta.url), 2)

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
    })
  }
})
