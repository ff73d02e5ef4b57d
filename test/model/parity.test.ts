import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { add, createGraphSession, grad, mul, reduceSum } from '../../src/engine/index.ts'
import { scoringFeeds } from '../../src/model/batch.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { readSafetensors } from '../../src/model/safetensors.ts'
import { loadWeights } from '../../src/model/weights.ts'
import { batchFromMasks } from '../helpers/masked-batch.ts'

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'model')

/** max |a - b| / max |b|: relative to the tensor's scale, so near-zero entries do not dominate. */
function relError(got: ArrayLike<number>, want: ArrayLike<number>, select?: (i: number) => boolean): number {
  let diff = 0
  let scale = 0
  for (let i = 0; i < want.length; i++) {
    if (select && !select(i)) continue
    diff = Math.max(diff, Math.abs(got[i] - want[i]))
    scale = Math.max(scale, Math.abs(want[i]))
  }
  return diff / scale
}

for (const [name, vocabChunks] of [
  ['llama-gqa-tied', 1],
  ['qwen2-bias', 1],
  ['llama-gqa-tied', 4],
  ['qwen2-bias', 3],
] as const) {
  const head = vocabChunks > 1 ? `, LM head in ${vocabChunks} vocabulary chunks` : ''
  test(`${name}${head}: logits, sequence log-probs and weight gradients match PyTorch (rel < 1e-4, float32)`, async () => {
    const dir = path.join(FIXTURES, name)
    const parsed = parseLlamaConfig(JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')))
    assert.ok('config' in parsed, JSON.stringify(parsed.problems))
    const cfg = parsed.config
    const weights = await loadWeights(dir, cfg)
    const ref = await readSafetensors(path.join(dir, 'reference.safetensors'))
    const batchJson = JSON.parse(await readFile(path.join(dir, 'batch.json'), 'utf8'))
    const rows = batchJson.input_ids.length
    const seq = batchJson.input_ids[0].length
    const flat = (k: string) => Int32Array.from(batchJson[k].flat() as number[])
    const mask = Uint8Array.from(flat('attention_mask'))
    const batch = batchFromMasks(rows, seq, flat('input_ids'), flat('attention_mask'), flat('response_mask'))

    const scoring = buildScoringGraph(
      { cfg, weights },
      { trainable: 'all', logits: true, sequences: rows, vocabChunks },
    )
    const { graph: g, logps, params } = scoring
    const weightsOf = (k: 'sum' | 'mean') =>
      g.constant(Float32Array.from(batchJson.loss_weights[k]), 'float32', [rows])
    const loss = reduceSum(
      g,
      add(g, mul(g, logps.sum, weightsOf('sum')), mul(g, logps.mean, weightsOf('mean'))),
    )
    const keys = [...params.keys()]
    for (const [i, t] of grad(g, loss, [...params.values()]).entries()) g.output(t!, `grad.${keys[i]}`)
    g.output(loss, 'loss')
    const session = await createGraphSession(g.serialize(), { provider: 'cpu', name })
    const feeds = scoringFeeds(cfg, batch, 'float32')
    for (const [k, w] of weights) feeds[k] = { dtype: 'float32', dims: w.shape, data: w.data }
    const out = await session.run(feeds)
    await session.release()

    const v = cfg.vocab_size
    const errors: Record<string, number> = {
      logits: relError(
        out.logits.data as Float32Array,
        ref.get('logits')!.data,
        (i) => mask[Math.floor(i / v)] === 1,
      ),
      'logps.sum': relError(out['logps.sum'].data as Float32Array, ref.get('logps.sum')!.data),
      'logps.mean': relError(out['logps.mean'].data as Float32Array, ref.get('logps.mean')!.data),
      'logps.count': relError(out['logps.count'].data as Float32Array, ref.get('logps.count')!.data),
      loss: relError(out.loss.data as Float32Array, ref.get('loss')!.data),
    }
    for (const k of keys)
      errors[`grad.${k}`] = relError(out[`grad.${k}`].data as Float32Array, ref.get(`grad.${k}`)!.data)
    const worst = Object.entries(errors).sort((a, b) => b[1] - a[1])[0]
    for (const [k, e] of Object.entries(errors))
      assert.ok(e < 1e-4, `${k}: relative error ${e} (worst ${worst})`)
    assert.equal(keys.length, ref.size - 5, 'every weight has a reference gradient')
  })
}
