import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { createGraphSession } from '../../src/engine/index.ts'
import { attentionMaskFeeds, INPUT, MASK_VALUE, packRows, scoringFeeds } from '../../src/model/batch.ts'
import { type LlamaConfig, parseLlamaConfig } from '../../src/model/config.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { loadModel } from '../../src/model/load.ts'
import { Policy } from '../../src/model/policy.ts'
import { makeTinyModel } from '../../src/model/tiny.ts'
import { loadWeights } from '../../src/model/weights.ts'
import { batchFromMasks } from '../helpers/masked-batch.ts'

const QWEN2 = path.join(import.meta.dirname, '..', 'fixtures', 'model', 'qwen2-bias')
const WINDOW = 2

function parse(json: Record<string, unknown>): LlamaConfig {
  const parsed = parseLlamaConfig(json)
  assert.ok('config' in parsed, JSON.stringify(parsed.problems))
  return parsed.config
}

const tiny = {
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  vocab_size: 50,
}
const [F, S] = ['full_attention', 'sliding_attention'] as const

describe('qwen2 sliding window per layer', () => {
  it('slides only layers from max_window_layers on, or those layer_types name (as HF configs resolve it)', () => {
    const sliding = { ...tiny, use_sliding_window: true, sliding_window: WINDOW }
    assert.deepEqual(parse({ ...sliding, max_window_layers: 2 }).layer_types, [F, F, S, S])
    assert.deepEqual(parse({ ...sliding, max_window_layers: 0 }).layer_types, [S, S, S, S])
    assert.deepEqual(parse(sliding).layer_types, [F, F, F, F], 'default max_window_layers is 28')
    assert.deepEqual(parse({ ...sliding, layer_types: [S, F, S, F] }).layer_types, [S, F, S, F])
    const off = parse({ ...tiny, sliding_window: WINDOW, max_window_layers: 0, layer_types: [S, S, S, S] })
    assert.equal(off.sliding_window, null)
    assert.deepEqual(off.layer_types, [F, F, F, F], 'no window without use_sliding_window')
    const mistral = parse({ ...tiny, model_type: 'mistral', sliding_window: WINDOW })
    assert.deepEqual(mistral.layer_types, [S, S, S, S])
    assert.deepEqual(parse({ ...tiny, model_type: 'llama' }).layer_types, [F, F, F, F])

    const bad = parseLlamaConfig({ ...sliding, layer_types: [S, 'local'] })
    assert.ok('problems' in bad)
    assert.match(
      bad.problems.join(),
      /layer_types: expected 4 entries of "full_attention" or "sliding_attention"/,
    )
    const badFrom = parseLlamaConfig({ ...sliding, max_window_layers: -1 })
    assert.ok(
      'problems' in badFrom &&
        /max_window_layers: expected an integer >= 0, got -1/.test(badFrom.problems.join()),
    )
  })

  it('feeds one mask per kind of layer; the sliding one hides keys WINDOW or more positions back', () => {
    const cfg = parse({ ...tiny, use_sliding_window: true, sliding_window: WINDOW, max_window_layers: 2 })
    const slots = { positions: Int32Array.from([0, 1, 2, 3]), mask: Uint8Array.from([1, 1, 1, 1]) }
    const feeds = attentionMaskFeeds(cfg, 1, slots, slots, 'float32')
    assert.deepEqual(Object.keys(feeds).sort(), [INPUT.bias, INPUT.slidingBias])
    const seen = (name: string) => {
      const data = [...feeds[name].data]
      assert.ok(data.every((x) => x === 0 || x === MASK_VALUE))
      return data.map((x) => (x === 0 ? 1 : 0)).join('')
    }
    assert.equal(seen(INPUT.bias), '1000110011101111')
    assert.equal(seen(INPUT.slidingBias), '1000110001100011')
    const uniform = parse({ ...tiny, use_sliding_window: true, sliding_window: WINDOW, max_window_layers: 0 })
    assert.deepEqual(Object.keys(attentionMaskFeeds(uniform, 1, slots, slots, 'float32')), [
      INPUT.slidingBias,
    ])
  })

  it('masks attention in the sliding layers only: logits of a 2-layer qwen2', async () => {
    const json = JSON.parse(await readFile(path.join(QWEN2, 'config.json'), 'utf8'))
    const base = parse(json)
    const weights = await loadWeights(QWEN2, base)
    const seq = 6
    const ones = new Uint8Array(seq).fill(1)
    const batch = batchFromMasks(1, seq, Int32Array.from([3, 17, 8, 41, 22, 5]), ones, ones)
    const logits = async (overrides: Record<string, unknown>): Promise<Float32Array> => {
      const cfg = parse({ ...json, use_sliding_window: true, sliding_window: WINDOW, ...overrides })
      const { graph } = buildScoringGraph({ cfg, weights }, { trainable: 'all', logits: true, sequences: 1 })
      const session = await createGraphSession(graph.serialize(), { provider: 'cpu', intraOpThreads: 1 })
      const feeds = scoringFeeds(cfg, batch, 'float32')
      for (const [k, w] of weights) feeds[k] = { dtype: 'float32', dims: w.shape, data: w.data }
      const out = await session.run(feeds)
      await session.release()
      return out.logits.data as Float32Array
    }
    const v = base.vocab_size
    /** Largest difference at positions [from, to). */
    const diff = (a: Float32Array, b: Float32Array, from: number, to: number) => {
      let d = 0
      for (let i = from * v; i < to * v; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
      return d
    }
    const full = await logits({ use_sliding_window: false })
    const none = await logits({ max_window_layers: 2 })
    const last = await logits({ max_window_layers: 1 })
    const lastByType = await logits({ layer_types: [F, S] })
    const first = await logits({ layer_types: [S, F] })
    const both = await logits({ max_window_layers: 0 })
    assert.deepEqual(none, full, 'max_window_layers = num_hidden_layers: no layer slides')
    assert.deepEqual(lastByType, last, 'layer_types [full, sliding] = max_window_layers 1')
    for (const [name, got] of Object.entries({ last, first, both })) {
      assert.ok(
        diff(got, full, 0, WINDOW) < 1e-6,
        `${name}: positions before the window see every key anyway`,
      )
      assert.ok(diff(got, full, WINDOW, seq) > 1e-3, `${name}: later positions lose keys`)
    }
    assert.ok(diff(last, first, WINDOW, seq) > 1e-3 && diff(last, both, WINDOW, seq) > 1e-3)
  })

  it('decodes with the KV cache exactly as the full forward pass scores, sliding layers included', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sliding-'))
    try {
      const dir = path.join(root, 'tiny')
      const overrides = {
        model_type: 'qwen2',
        use_sliding_window: true,
        sliding_window: 4,
        max_window_layers: 2,
      }
      await makeTinyModel(dir, { seed: 3, overrides })
      const policy = await Policy.load(dir)
      const model = await loadModel(dir)
      assert.deepEqual(model.config.layer_types, [F, F, S, S])
      const messages = [{ role: 'user' as const, content: 'What is the capital of France?' }]
      const [gen] = await policy.generate([messages], {
        temperature: 0,
        topP: 1,
        topK: 0,
        seed: 0,
        maxNewTokens: 8,
      })
      await policy.dispose()
      const prompt = model.tokenizer.encode(
        model.chatTemplate!.render(messages, { addGenerationPrompt: true }),
      )
      const batch = packRows([{ prompt, response: gen.tokens }], { padding: 'right', padId: 0 })
      const scored = async (cfg: LlamaConfig) => {
        const { graph } = buildScoringGraph(
          { cfg, weights: model.weights },
          { trainable: 'none', logits: true },
        )
        const session = await createGraphSession(graph.serialize(), { provider: 'cpu', name: 'full' })
        const out = await session.run(scoringFeeds(cfg, batch, 'float32'))
        await session.release()
        return out.logits.data as Float32Array
      }
      const logits = await scored(model.config)
      const unwindowed = await scored({ ...model.config, layer_types: [F, F, F, F] })
      const v = model.config.vocab_size
      let windowEffect = 0
      gen.tokens.forEach((token, t) => {
        const at = (prompt.length - 1 + t) * v
        const row = logits.subarray(at, at + v)
        const argmax = row.indexOf(Math.max(...row))
        assert.equal(token, argmax, `token ${t}`)
        const lse = Math.log(row.reduce((sum, x) => sum + Math.exp(x - row[argmax]), 0)) + row[argmax]
        assert.ok(Math.abs(gen.logprobs[t] - (row[argmax] - lse)) < 1e-4, `log-prob of token ${t}`)
        for (let i = 0; i < v; i++)
          windowEffect = Math.max(windowEffect, Math.abs(row[i] - unwindowed[at + i]))
      })
      assert.ok(windowEffect > 1e-4, `the window changes the logits (by ${windowEffect})`)
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})
