/**
 * Writes what scripts/hf-compat-check.py compares with transformers and PEFT: a tiny model folder
 * (untied head), LoRA adapters trained for a few steps and saved as PEFT does, our logits of a fixed
 * batch with and without the adapters, and our token ids of a text and of a rendered chat.
 * Usage: node --import tsx scripts/hf-compat.ts <dir>
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createGraphSession, neg, reduceMean } from '../src/engine/index.ts'
import { packRows, scoringFeeds } from '../src/model/batch.ts'
import type { ChatMessage } from '../src/model/chat-template.ts'
import { buildScoringGraph } from '../src/model/graphs.ts'
import { loadModel } from '../src/model/load.ts'
import { Policy } from '../src/model/policy.ts'
import { makeTinyModel } from '../src/model/tiny.ts'

const out = process.argv[2]
if (!out) {
  console.error('usage: hf-compat <dir>')
  process.exit(2)
}
const modelDir = path.join(out, 'tiny')
await makeTinyModel(modelDir, { seed: 3, overrides: { tie_word_embeddings: false } })
const policy = await Policy.load(modelDir, {
  lora: { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] },
  seed: 2,
})
const sft = {
  name: 'sft',
  build: (g: Parameters<typeof neg>[0], l: { mean: Parameters<typeof neg>[1] }) => ({
    loss: neg(g, reduceMean(g, l.mean)),
  }),
}
const row = policy.tokenizeExchange([{ role: 'user', content: 'Hi' }], 'Hello there.')
for (let i = 0; i < 5; i++) await policy.trainStep({ rows: [row] }, { lr: 1e-2, loss: sft })
await policy.saveAdapter(path.join(out, 'adapter'))

const model = await loadModel(modelDir)
const ids = [
  [400, 117, 372, 10, 72, 105, 401, 10, 400, 97],
  [12, 55, 300, 301, 99, 98, 97, 10, 11, 46],
]
const result: Record<string, unknown> = { ids }
for (const variant of ['base', 'lora'] as const) {
  const lora = variant === 'lora' ? policy.lora : undefined
  const { graph } = buildScoringGraph(
    { cfg: model.config, weights: model.weights, lora },
    { trainable: 'none', logits: true },
  )
  const session = await createGraphSession(graph.serialize(), { provider: 'cpu', name: variant })
  const batch = packRows(
    ids.map((prompt) => ({ prompt, response: [] })),
    { padding: 'right', padId: 0 },
  )
  result[variant] = Array.from(
    (await session.run(scoringFeeds(model.config, batch, 'float32'))).logits.data as Float32Array,
  )
  await session.release()
}
const messages: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
]
result.text = 'What is the capital of France? The answer: Paris, 42 naïve 😀'
result.text_ids = model.tokenizer.encode(result.text as string)
result.messages = messages
result.chat_ids = model.tokenizer.encode(model.chatTemplate!.render(messages, { addGenerationPrompt: true }))
await writeFile(path.join(out, 'ours.json'), JSON.stringify(result))
await policy.dispose()
console.log(JSON.stringify({ dir: out }))
