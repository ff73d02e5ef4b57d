import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { createGraphSession, neg, reduceMean } from '../../src/engine/index.ts'
import { packRows, scoringFeeds } from '../../src/model/batch.ts'
import type { ChatMessage } from '../../src/model/chat-template.ts'
import { buildScoringGraph, type PolicyLoss } from '../../src/model/graphs.ts'
import { loadModel } from '../../src/model/load.ts'
import { fromPeft } from '../../src/model/lora.ts'
import { Policy } from '../../src/model/policy.ts'
import { readSafetensors } from '../../src/model/safetensors.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'

let root: string
let modelDir: string
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'policy-'))
  modelDir = path.join(root, 'tiny')
  await makeTinyModel(modelDir, { seed: 5 })
})
after(() => rm(root, { recursive: true, force: true }))

const question: ChatMessage[] = [
  { role: 'system', content: 'Answer briefly.' },
  { role: 'user', content: 'What is the capital of France?' },
]
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 }

test('response log-probs do not depend on padding side or batch company', async () => {
  const right = await Policy.load(modelDir, { padding: 'right' })
  const left = await Policy.load(modelDir, { padding: 'left' })
  const a = right.tokenizeExchange(question, 'Paris.')
  const b = right.tokenizeExchange(
    [{ role: 'user', content: 'Say something long please' }],
    'Here is a longer answer with many words in it.',
  )
  const both = await right.logprobs([a, b])
  const bothLeft = await left.logprobs([a, b])
  const alone = await right.logprobs([a])
  assert.deepEqual(both.count, [a.response.length, b.response.length])
  for (let i = 0; i < 2; i++) {
    assert.ok(
      Math.abs(both.sum[i] - bothLeft.sum[i]) < 1e-4,
      `row ${i}: ${both.sum[i]} vs ${bothLeft.sum[i]}`,
    )
    assert.ok(Math.abs(both.mean[i] - both.sum[i] / both.count[i]) < 1e-5)
  }
  assert.ok(Math.abs(both.sum[0] - alone.sum[0]) < 1e-4)
  await right.dispose()
  await left.dispose()
})

test('greedy decoding equals the argmax of the full forward pass, batched or alone', async () => {
  const policy = await Policy.load(modelDir)
  const prompts = [question, [{ role: 'user' as const, content: 'Hi' }]]
  const [first, second] = await policy.generate(prompts, { ...greedy, maxNewTokens: 12 })
  const [alone] = await policy.generate([prompts[1]], { ...greedy, maxNewTokens: 12 })
  assert.deepEqual(second.tokens, alone.tokens)
  for (const [i, gen] of [first, second].entries()) {
    assert.equal(gen.tokens.length, 12, 'a random model does not stop early')
    const prompt = policy.model.tokenizer.encode(
      policy.model.chatTemplate!.render(prompts[i], { addGenerationPrompt: true }),
    )
    const model = await loadModel(modelDir)
    const { graph } = buildScoringGraph(
      { cfg: model.config, weights: model.weights },
      { trainable: 'none', logits: true },
    )
    const session = await createGraphSession(graph.serialize(), { provider: 'cpu', name: 'full' })
    const batch = packRows([{ prompt, response: gen.tokens }], { padding: 'right', padId: 0 })
    const out = await session.run(scoringFeeds(model.config, batch, 'float32'))
    await session.release()
    const logits = out.logits.data as Float32Array
    const v = model.config.vocab_size
    gen.tokens.forEach((token, t) => {
      const row = logits.subarray((prompt.length - 1 + t) * v, (prompt.length + t) * v)
      const argmax = row.indexOf(Math.max(...row))
      assert.equal(token, argmax, `token ${t}`)
      const lse = Math.log(row.reduce((s, x) => s + Math.exp(x - row[argmax]), 0)) + row[argmax]
      assert.ok(Math.abs(gen.logprobs[t] - (row[argmax] - lse)) < 1e-4)
    })
  }
  await policy.dispose()
})

test('seeded sampling is reproducible; stop strings cut the text', async () => {
  const policy = await Policy.load(modelDir)
  const opts = { temperature: 1, topP: 0.9, topK: 50, maxNewTokens: 10 }
  const a = await policy.generate([question, question], { ...opts, seed: 7 })
  const b = await policy.generate([question, question], { ...opts, seed: 7 })
  const c = await policy.generate([question, question], { ...opts, seed: 8 })
  assert.deepEqual(a, b)
  assert.notDeepEqual(
    a.map((x) => x.tokens),
    c.map((x) => x.tokens),
  )
  const stop = a[0].text.slice(2, 4)
  const cut = await policy.generate([question], { ...opts, seed: 7, stopStrings: [stop] })
  assert.equal(cut[0].finishReason, 'stop')
  assert.equal(cut[0].text, a[0].text.slice(0, a[0].text.indexOf(stop)))
  await policy.dispose()
})

test('a short SFT drives the loss down and greedy generation reproduces the memorised answer', async () => {
  const policy = await Policy.load(modelDir)
  const answer = 'The capital of France is Paris.'
  const row = policy.tokenizeExchange(question, answer)
  const losses: number[] = []
  for (let i = 0; i < 40; i++) {
    const step = await policy.trainStep({ rows: [row] }, { lr: 3e-3, loss: sft, maxGradNorm: 1 })
    // The CPU provider reads host memory in place: nothing crosses a bus, nothing is counted.
    assert.deepEqual(step.transfers, { hostToDevice: 0, deviceToHost: 0, runs: 0 })
    losses.push(step.loss)
  }
  assert.ok(losses.at(-1)! < 0.1 * losses[0], `loss ${losses[0]} -> ${losses.at(-1)}`)
  const [gen] = await policy.generate([question], { ...greedy, maxNewTokens: 20 })
  assert.equal(gen.text, answer)
  assert.equal(gen.finishReason, 'stop')

  // Saved full weights load back with the same scores.
  const saved = path.join(root, 'sft-full')
  await policy.saveFull(saved)
  const reloaded = await Policy.load(saved)
  const [x, y] = [await policy.logprobs([row]), await reloaded.logprobs([row])]
  assert.ok(Math.abs(x.sum[0] - y.sum[0]) < 1e-5)
  await reloaded.dispose()

  // The reference stays where it was frozen while the policy moves on.
  await policy.freezeReference()
  await policy.trainStep({ rows: [policy.tokenizeExchange(question, 'Rome.')] }, { lr: 3e-3, loss: sft })
  const ref = await policy.logprobs([row], 'reference')
  assert.ok(Math.abs(ref.sum[0] - x.sum[0]) < 1e-5)
  assert.ok(Math.abs((await policy.logprobs([row])).sum[0] - x.sum[0]) > 1e-3)
  await policy.dispose()
})

test("on the CPU a policy gives its training sessions' memory back when it moves on to scoring", async () => {
  const policy = await Policy.load(modelDir)
  // long rows: the step's activations (attention over hundreds of tokens) are most of the process
  const text = (i: number) => `${i} ${'every word counts '.repeat(16)}`
  const rows = Array.from({ length: 8 }, (_, i) =>
    policy.tokenizeExchange([{ role: 'user', content: text(i) }], text(i)),
  )
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`
  const before = process.memoryUsage.rss()
  await policy.trainStep({ rows }, { lr: 1e-4, loss: sft })
  const trained = process.memoryUsage.rss() - before
  await policy.logprobs(rows.slice(0, 1))
  const scored = process.memoryUsage.rss() - before
  await policy.dispose()
  console.log(
    `rows of ${rows[0].prompt.length + rows[0].response.length} tokens: step +${mb(trained)}, then scoring +${mb(scored)}`,
  )
  assert.ok(trained > 100 * 2 ** 20, `the step should hold its activations' arena: +${mb(trained)}`)
  assert.ok(
    scored < trained / 2,
    `after moving on to scoring +${mb(scored)} remain of the step's +${mb(trained)}`,
  )
})

test('full fine-tuning: the frozen reference is the policy itself until a step; released, no copy is taken', async () => {
  const policy = await Policy.load(modelDir)
  const row = policy.tokenizeExchange(question, 'Paris.')
  const bytes = policy.weightBytes()
  await policy.freezeReference()
  const ref = await policy.logprobs([row], 'reference')
  assert.deepEqual(ref.sum, (await policy.logprobs([row])).sum)
  await policy.releaseReference()
  await policy.trainStep({ rows: [row] }, { lr: 3e-3, loss: sft })
  assert.equal(policy.weightBytes(), bytes, 'no snapshot of the weights after the release')
  await assert.rejects(policy.logprobs([row], 'reference'), /released/)
  const state = await policy.exportState()
  assert.ok(![...state.tensors.keys()].some((k) => k.startsWith('reference.')))
  // A new freeze brings the reference back; trained while frozen, it is snapshotted first.
  await policy.freezeReference()
  const frozen = await policy.logprobs([row], 'reference')
  await policy.trainStep({ rows: [row] }, { lr: 3e-3, loss: sft })
  assert.equal(policy.weightBytes(), 2 * bytes)
  assert.deepEqual((await policy.logprobs([row], 'reference')).sum, frozen.sum)
  await policy.dispose()
})

test('full fine-tuning on float16 gradients follows float32 gradients within their rounding, micro-batches included', async () => {
  const policies = await Promise.all(
    (['float32', 'float16'] as const).map((gradDtype) => Policy.load(modelDir, { adamw: { gradDtype } })),
  )
  const rows = ['Paris.', 'It is Paris.', 'Lyon.', 'Paris, of course.'].map((a) =>
    policies[0].tokenizeExchange(question, a),
  )
  const micro = [{ rows: rows.slice(0, 2) }, { rows: rows.slice(2) }]
  for (let step = 0; step < 3; step++) {
    const [full, half] = await Promise.all(
      policies.map((p) =>
        p.trainStep(step === 1 ? { rows } : micro, { lr: 1e-3, loss: sft, maxGradNorm: 1 }),
      ),
    )
    assert.ok(Math.abs(half.loss - full.loss) <= 1e-3 * Math.abs(full.loss), `step ${step} loss`)
    assert.ok(Math.abs(half.gradNorm - full.gradNorm) <= 2e-3 * full.gradNorm, `step ${step} gradient norm`)
    // the float16 policy really read rounded gradients: its norm is not the float32 one
    assert.notEqual(half.gradNorm, full.gradNorm, `step ${step}: the same norm, float16 gradients unused?`)
  }
  const [full, half] = await Promise.all(policies.map((p) => p.logprobs(rows)))
  const moved = (
    await Policy.load(modelDir).then(async (p) => {
      const before = await p.logprobs(rows)
      await p.dispose()
      return before
    })
  ).sum.map((x, i) => Math.abs(full.sum[i] - x))
  half.sum.forEach((x, i) => {
    assert.ok(
      Math.abs(x - full.sum[i]) <= 0.01 * moved[i],
      `row ${i}: ${x} vs ${full.sum[i]}, moved ${moved[i]}`,
    )
  })
  await Promise.all(policies.map((p) => p.dispose()))
})

test('LoRA: adapters start as a no-op, train, save as PEFT, merge into the base, and restore from state', async () => {
  const lora = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'up_proj'] }
  const policy = await Policy.load(modelDir, { lora, seed: 1 })
  const row = policy.tokenizeExchange(question, 'Paris.')
  const before = await policy.logprobs([row])
  assert.ok(
    Math.abs(before.sum[0] - (await policy.logprobs([row], 'reference')).sum[0]) < 1e-6,
    'B = 0 at init',
  )
  let first = 0
  let last = 0
  for (let i = 0; i < 20; i++) {
    last = (await policy.trainStep({ rows: [row] }, { lr: 1e-2, loss: sft })).loss
    if (i === 0) first = last
  }
  assert.ok(last < 0.8 * first, `LoRA loss ${first} -> ${last}`)
  const trained = await policy.logprobs([row])

  const adapterDir = path.join(root, 'adapter')
  await policy.saveAdapter(adapterDir)
  const config = JSON.parse(await readFile(path.join(adapterDir, 'adapter_config.json'), 'utf8'))
  assert.equal(config.peft_type, 'LORA')
  assert.deepEqual(config.target_modules, ['q_proj', 'up_proj', 'v_proj'])
  const tensors = await readSafetensors(path.join(adapterDir, 'adapter_model.safetensors'))
  assert.deepEqual(
    tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')?.shape,
    [4, 128],
  )
  assert.deepEqual(tensors.get('base_model.model.model.layers.3.mlp.up_proj.lora_B.weight')?.shape, [352, 4])
  assert.equal(tensors.size, 2 * 3 * 4)
  assert.equal(fromPeft(config, tensors).spec.rank, 4)

  const stateDir = path.join(root, 'lora-state')
  await policy.saveState(stateDir)
  const forked = await policy.fork()
  const next = await policy.trainStep({ rows: [row] }, { lr: 1e-2, loss: sft })
  const restored = await Policy.load(modelDir, { lora, seed: 99 })
  await restored.loadState(stateDir)
  for (const other of [restored, forked]) {
    const again = await other.trainStep({ rows: [row] }, { lr: 1e-2, loss: sft })
    assert.ok(Math.abs(next.loss - again.loss) < 1e-6 && Math.abs(next.gradNorm - again.gradNorm) < 1e-5)
    assert.equal(other.step, policy.step)
    await other.dispose()
  }

  const fullDir = path.join(root, 'lora-merged')
  await policy.saveFull(fullDir)
  const merged = await Policy.load(fullDir)
  const current = await policy.logprobs([row])
  assert.ok(Math.abs((await merged.logprobs([row])).sum[0] - current.sum[0]) < 1e-4)
  await merged.dispose()
  await policy.mergeAdapters()
  const afterMerge = await policy.logprobs([row])
  assert.ok(Math.abs(afterMerge.sum[0] - current.sum[0]) < 1e-4, 'merging keeps the function')
  assert.ok(Math.abs((await policy.logprobs([row], 'reference')).sum[0] - current.sum[0]) < 1e-4)
  assert.ok(trained.sum[0] > before.sum[0])
  await policy.dispose()
})
