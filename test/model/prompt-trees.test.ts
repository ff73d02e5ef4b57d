import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { add, grad, mul, reduceSum } from '../../src/engine/index.ts'
import { packRows, scoringFeeds, type TokenRow } from '../../src/model/batch.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { randomWeights } from '../../src/model/tiny.ts'
import { assertAllClose } from '../helpers/all-close.ts'
import { runGraph } from '../helpers/run-graph.ts'
import { TINY_QWEN2_JSON, tinyConfig } from '../helpers/tiny-qwen2.ts'

/** SSO's seven sequences of one example: three prompts (x, x+, x-), responses of several lengths. */
const x = [1, 2, 3]
const xGood = [4, 5, 1, 2, 3]
const xBad = [6, 7, 8, 1, 2, 3]
const [yPlus, yMinus, y0] = [
  [9, 10, 11],
  [12, 13],
  [14, 15, 16, 17],
]
const SSO_ROWS: TokenRow[] = [
  { prompt: x, response: yPlus },
  { prompt: x, response: yMinus },
  { prompt: xGood, response: yPlus },
  { prompt: xGood, response: yMinus },
  { prompt: xBad, response: y0 },
  { prompt: xBad, response: yPlus },
  { prompt: xBad, response: yMinus },
  // a prompt no other row shares, and an empty response
  { prompt: [18, 19], response: [20] },
  { prompt: x, response: [] },
]

describe('prompt trees', () => {
  it('packs rows that share a prompt into one row: the prompt once, positions restarting per branch', () => {
    const batch = packRows(SSO_ROWS, { padding: 'right', padId: 0, maxBranches: 3 })
    assert.equal(batch.rows, 4)
    assert.equal(batch.sequences, SSO_ROWS.length)
    assert.equal(batch.seq, xBad.length + y0.length + yPlus.length + yMinus.length)
    const row = (b: number, a: Int32Array | Uint8Array) => [...a.slice(b * batch.seq, (b + 1) * batch.seq)]
    // x- row: the prompt, then y0, y+ and y- as branches 1, 2, 3, each from position |x-|
    assert.deepEqual(row(2, batch.ids), [...xBad, ...y0, ...yPlus, ...yMinus])
    assert.deepEqual(row(2, batch.positions), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 6, 7, 8, 6, 7])
    assert.deepEqual(row(2, batch.branches), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3])
    // every sequence has one target per response token, its first predicted by the prompt's last slot
    const { slots, ids, sequences } = batch.targets
    SSO_ROWS.forEach((r, s) => {
      const own = [...sequences.keys()].filter((i) => sequences[i] === s)
      assert.deepEqual(
        own.map((i) => ids[i]),
        r.response,
      )
    })
    const firstOfBadChosen = [...sequences.keys()].find((i) => sequences[i] === 5)!
    assert.equal(slots[firstOfBadChosen], 2 * batch.seq + xBad.length - 1)
    assert.equal(packRows(SSO_ROWS, { padding: 'right', padId: 0 }).rows, SSO_ROWS.length)
    // a cap on the responses per row: x and x- split into two rows each
    assert.equal(packRows(SSO_ROWS, { padding: 'right', padId: 0, maxBranches: 2 }).rows, 6)
  })

  it('keeps one row per sequence where trees would make the batch larger', () => {
    const long = Array.from({ length: 10 }, (_, i) => 20 + i)
    const rows = [
      ...[0, 1, 2].map(() => ({ prompt: [1, 2], response: long })),
      { prompt: [3, 4], response: long },
    ]
    // trees: 2 rows of 2 + 3 × 10 tokens (64 slots); own rows: 4 of 12 (48)
    const batch = packRows(rows, { padding: 'right', padId: 0, maxBranches: 3 })
    assert.deepEqual([batch.rows, batch.seq], [4, 12])
    assert.deepEqual(
      [...batch.branches].filter((b) => b > 1),
      [],
    )
  })

  it('lets a branch see its prompt and itself only', async () => {
    const cfg = tinyConfig()
    const batch = packRows(SSO_ROWS.slice(0, 2), { padding: 'left', padId: 0, maxBranches: 3 })
    const bias = scoringFeeds(cfg, batch, 'float32').attention_bias.data as Float32Array
    const t = batch.seq
    const sees = (q: number) => [...bias.slice(q * t, (q + 1) * t)].map((v) => (v === 0 ? 1 : 0))
    // one row: x (3 tokens), y+ (3), y- (2), no padding; y-'s first token sees x and itself
    assert.deepEqual(sees(6), [1, 1, 1, 0, 0, 0, 1, 0])
    assert.deepEqual(sees(5), [1, 1, 1, 1, 1, 1, 0, 0])
    assert.deepEqual(sees(1), [1, 1, 0, 0, 0, 0, 0, 0])
  })

  // Sliding layers too: a window of 2 cuts into the prompt from every branch.
  for (const [name, json] of [
    ['full attention', TINY_QWEN2_JSON],
    [
      'sliding-window layers',
      { ...TINY_QWEN2_JSON, use_sliding_window: true, sliding_window: 2, max_window_layers: 1 },
    ],
  ] as const) {
    it(`gives every sequence the log-probs and gradients it has in a row of its own (float64, ${name})`, async () => {
      const cfg = tinyConfig(json)
      const weights = randomWeights(cfg, 5, 0.4)
      const scoring = buildScoringGraph(
        { cfg, weights },
        { trainable: 'all', dtype: 'float64', sequences: SSO_ROWS.length },
      )
      const { graph: g, logps, params } = scoring
      const coefficients = (seed: number) =>
        g.constant(
          Float64Array.from(SSO_ROWS, (_, i) => Math.sin(seed + i)),
          'float64',
          [SSO_ROWS.length],
        )
      const loss = reduceSum(
        g,
        add(g, mul(g, logps.sum, coefficients(1)), mul(g, logps.mean, coefficients(2))),
      )
      const keys = [...params.keys()]
      for (const [i, t] of grad(g, loss, [...params.values()]).entries()) g.output(t!, `grad.${keys[i]}`)
      const run = (maxBranches: number, padding: 'left' | 'right') => {
        const feeds = scoringFeeds(cfg, packRows(SSO_ROWS, { padding, padId: 0, maxBranches }), 'float64')
        for (const [k, w] of weights)
          feeds[k] = { dtype: 'float64', dims: w.shape, data: Float64Array.from(w.data) }
        return runGraph(g, feeds)
      }
      const [own, shared, sharedLeft] = await Promise.all([run(1, 'right'), run(3, 'right'), run(2, 'left')])
      assert.deepEqual(
        [...(shared['logps.count'].data as Float64Array)],
        SSO_ROWS.map((r) => r.response.length),
      )
      for (const key of Object.keys(own).filter((k) => k.startsWith('logps') || k.startsWith('grad'))) {
        for (const packed of [shared, sharedLeft])
          assertAllClose(packed[key].data as Float64Array, own[key].data as Float64Array, {
            rtol: 1e-10,
            atol: 1e-13,
            what: key,
          })
      }
    })
  }
})
