import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { ModelLoadError } from '../../src/errors.ts'
import { parseLlamaConfig, ropeInverseFrequencies } from '../../src/model/config.ts'
import { loadModel } from '../../src/model/load.ts'
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'

let root: string
let tiny: string
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'model-load-'))
  tiny = path.join(root, 'tiny')
  await makeTinyModel(tiny, { seed: 7 })
})
after(() => rm(root, { recursive: true, force: true }))

async function copyOf(name: string): Promise<string> {
  const dir = path.join(root, name)
  await cp(tiny, dir, { recursive: true })
  return dir
}

async function loadError(dir: string): Promise<ModelLoadError> {
  try {
    await loadModel(dir)
  } catch (err) {
    assert.ok(err instanceof ModelLoadError, `expected ModelLoadError, got ${err}`)
    assert.equal(err.code, 'model_load_failed')
    return err
  }
  assert.fail(`loading ${dir} succeeded`)
}

test('a tiny model loads with tokenizer, chat template and stop tokens', async () => {
  const m = await loadModel(tiny)
  assert.equal(m.config.model_type, 'llama')
  assert.equal(m.config.num_key_value_heads, 2)
  assert.equal(m.weights.get('model.layers.0.self_attn.k_proj.weight')?.shape.join('x'), '64x128')
  assert.ok(!m.weights.has('lm_head.weight'), 'tied embeddings have no lm_head')
  const text = m.chatTemplate!.render(
    [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ],
    { addGenerationPrompt: true },
  )
  assert.equal(
    text,
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  )
  const ids = m.tokenizer.encode(text)
  assert.equal(ids[0], m.tokenizer.tokenToId('<|im_start|>'))
  assert.equal(m.tokenizer.decode(ids, { skipSpecialTokens: false }), text)
  assert.equal(m.tokenizer.decode(m.tokenizer.encode('naïve 😀 42')), 'naïve 😀 42')
  // A response that ends at once decodes to the empty string (the tokenizer library refuses [])
  assert.equal(m.tokenizer.decode([]), '')
  assert.deepEqual(
    m.stopTokenIds,
    [m.tokenizer.tokenToId('<|endoftext|>'), m.tokenizer.tokenToId('<|im_end|>')].sort(),
  )
})

test('makeTinyModel is deterministic in its seed', async () => {
  const again = path.join(root, 'again')
  await makeTinyModel(again, { seed: 7 })
  assert.deepEqual(
    await readFile(path.join(again, 'model.safetensors')),
    await readFile(path.join(tiny, 'model.safetensors')),
  )
  assert.deepEqual(
    await readFile(path.join(again, 'tokenizer.json')),
    await readFile(path.join(tiny, 'tokenizer.json')),
  )
})

test('missing files are all listed', async () => {
  const dir = await copyOf('incomplete')
  await rm(path.join(dir, 'model.safetensors'))
  await rm(path.join(dir, 'tokenizer.json'))
  const err = await loadError(dir)
  assert.match(err.message, /missing tokenizer\.json/)
  assert.match(err.message, /no weights: neither model\.safetensors nor model\.safetensors\.index\.json/)
})

test('JSON files of the wrong shape are named, not crashes', async () => {
  const cases: [string, string, RegExp][] = [
    ['tokenizer_config.json', '[1]', /tokenizer_config\.json: not a JSON object/],
    ['generation_config.json', 'null', /generation_config\.json: not a JSON object/],
    [
      'tokenizer_config.json',
      '{"chat_template": 5}',
      /chat_template must be a string or a list of named templates, got 5/,
    ],
  ]
  for (const [i, [file, text, why]] of cases.entries()) {
    const dir = await copyOf(`shape-${i}`)
    await writeFile(path.join(dir, file), text)
    assert.match((await loadError(dir)).message, why)
  }
})

test('an unsupported architecture and bad fields are all listed', async () => {
  const dir = await copyOf('gpt2')
  const cfg = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'))
  Object.assign(cfg, {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    hidden_act: 'gelu',
    num_key_value_heads: 3,
  })
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg))
  const err = await loadError(dir)
  assert.match(
    err.message,
    /unsupported architecture: model_type "gpt2" \(architectures \["GPT2LMHeadModel"\]\)/,
  )
  assert.match(err.message, /hidden_act "gelu" is not supported/)
  assert.match(err.message, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/)
  assert.deepEqual((err.details as { problems: string[] }).problems.length, 3)
})

test('missing, unexpected and misshapen weights are named', async () => {
  const dir = await copyOf('badweights')
  const file = path.join(dir, 'model.safetensors')
  const w = await readSafetensors(file)
  w.delete('model.layers.1.mlp.up_proj.weight')
  w.set('model.layers.1.mlp.extra.weight', { shape: [2], data: new Float32Array(2) })
  w.set('model.norm.weight', { shape: [64], data: new Float32Array(64) })
  await writeSafetensors(file, w)
  const err = await loadError(dir)
  assert.match(err.message, /missing weights \(1\): model\.layers\.1\.mlp\.up_proj\.weight/)
  assert.match(err.message, /unexpected weights \(1\): model\.layers\.1\.mlp\.extra\.weight/)
  assert.match(err.message, /model\.norm\.weight: shape \[64\], config implies \[128\]/)
})

test('sharded weights with an index load like the single file; a missing shard is named', async () => {
  const dir = await copyOf('sharded')
  const w = await readSafetensors(path.join(dir, 'model.safetensors'))
  await rm(path.join(dir, 'model.safetensors'))
  const keys = [...w.keys()]
  const shards = [keys.slice(0, 10), keys.slice(10)]
  const weightMap: Record<string, string> = {}
  for (const [i, part] of shards.entries()) {
    const name = `model-0000${i + 1}-of-00002.safetensors`
    await writeSafetensors(path.join(dir, name), new Map(part.map((k) => [k, w.get(k)!])), { dtype: 'BF16' })
    for (const k of part) weightMap[k] = name
  }
  await writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  )
  const m = await loadModel(dir)
  const key = 'model.layers.3.mlp.down_proj.weight'
  const ref = w.get(key)!.data
  const got = m.weights.get(key)!.data
  for (let i = 0; i < ref.length; i += 97) assert.ok(Math.abs(got[i] - ref[i]) <= Math.abs(ref[i]) * 2 ** -8)
  await rm(path.join(dir, 'model-00002-of-00002.safetensors'))
  const err = await loadError(dir)
  assert.match(err.message, /missing shard: model-00002-of-00002\.safetensors/)
})

test('qwen2 gets q/k/v biases; rope scaling follows the config', () => {
  const base = {
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    vocab_size: 100,
  }
  const q = parseLlamaConfig({ ...base, model_type: 'qwen2', num_key_value_heads: 2 })
  assert.ok('config' in q)
  assert.equal(q.config.attention_bias, true)
  assert.equal(q.config.o_proj_bias, false)
  const linear = parseLlamaConfig({
    ...base,
    model_type: 'llama',
    rope_scaling: { type: 'linear', factor: 4 },
  })
  assert.ok('config' in linear)
  const plain = parseLlamaConfig({ ...base, model_type: 'llama' })
  assert.ok('config' in plain)
  const f = ropeInverseFrequencies(linear.config)
  const f0 = ropeInverseFrequencies(plain.config)
  assert.ok(Math.abs(f[3] - f0[3] / 4) < 1e-15)
  const yarn = parseLlamaConfig({
    ...base,
    model_type: 'llama',
    rope_scaling: { rope_type: 'yarn', factor: 4 },
  })
  assert.ok('problems' in yarn && /rope_type "yarn" is not supported/.test(yarn.problems.join()))
})
