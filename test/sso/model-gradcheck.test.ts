/**
 * Finite differences through each full loss on a tiny model: the objective's loss (built exactly as the
 * trainer builds it, rows role-major with reference log-probs as inputs) over the model's response
 * log-probs, differentiated with respect to every weight, in float64.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HostTensor } from '../../src/engine/index.ts'
import { packRows, scoringFeeds } from '../../src/model/batch.ts'
import { parseLlamaConfig } from '../../src/model/config.ts'
import { buildScoringGraph } from '../../src/model/graphs.ts'
import { Random } from '../../src/model/random.ts'
import { randomWeights } from '../../src/model/tiny.ts'
import { type LossHyperparameters, type ObjectiveName, objectiveRoles } from '../../src/sso/loss-types.ts'
import { objectiveLoss } from '../../src/sso/model-adapter.ts'
import { directionalCheck } from '../helpers/directional-gradcheck.ts'

const parsed = parseLlamaConfig({
  model_type: 'llama',
  vocab_size: 19,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rope_theta: 10000,
  tie_word_embeddings: true,
})
assert.ok('config' in parsed)
const cfg = parsed.config

const HP: LossHyperparameters = {
  loss_type: 'ipo',
  beta: 0.2,
  theta_g: 0.3,
  alpha: 0.66,
  use_w: true,
  use_g: true,
  combination: 'paper',
  sft_gamma: 0.2,
  generator_loss_type: 'dpo',
  generator_beta: 0.1,
  generator_sft_gamma: 0.1,
}
const CASES: { label: string; objective: ObjectiveName; hp: Partial<LossHyperparameters> }[] = [
  { label: 'SSO v1 (IPO, paper, W, G, SFT term)', objective: 'sso', hp: {} },
  {
    label: 'SSO v1 (DPO, refactored)',
    objective: 'sso',
    hp: { loss_type: 'dpo', combination: 'refactored' },
  },
  { label: 'PBAA', objective: 'sso', hp: { use_w: false, use_g: false, sft_gamma: 0 } },
  { label: 'IPO', objective: 'preference', hp: {} },
  { label: 'SSO v2 generator', objective: 'sso_generator', hp: {} },
  { label: 'SFT', objective: 'sft', hp: {} },
]
const N = 2

for (const c of CASES) {
  test(`${c.label}: float64 directional finite difference w.r.t. all model weights`, async () => {
    const hp = { ...HP, ...c.hp }
    const { roles, refRoles } = objectiveRoles(c.objective, hp)
    const loss = objectiveLoss(c.objective, hp, N)
    const weights = randomWeights(cfg, 7, 0.3)
    const {
      graph: g,
      logps,
      params,
    } = buildScoringGraph(
      { cfg, weights },
      { trainable: 'all', dtype: 'float64', sequences: loss.rows, outputs: false },
    )
    const built = loss.build(g, logps)
    const rng = new Random(5)
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rng.uniform(1, cfg.vocab_size)))
    const rows = Array.from({ length: roles.length * N }, (_, i) => ({
      prompt: ids(2 + (i % 3)),
      response: ids(2 + (i % 2)),
    }))
    const feeds: Record<string, HostTensor> = {
      ...scoringFeeds(cfg, packRows(rows, { padding: 'right', padId: 0 }), 'float64'),
    }
    for (const role of refRoles) {
      feeds[`ref.${role}.sum`] = {
        dtype: 'float64',
        dims: [N],
        data: Float64Array.from({ length: N }, () => -8 + rng.normal()),
      }
      feeds[`ref.${role}.mean`] = {
        dtype: 'float64',
        dims: [N],
        data: Float64Array.from({ length: N }, () => -3 + rng.normal()),
      }
    }
    const { analytic, numeric } = await directionalCheck(g, built.loss, params, {
      name: 'sso-gradcheck',
      feeds,
      values: weights,
      rng,
    })
    assert.ok(Math.abs(numeric) > 1e-4, `the check needs a non-trivial derivative, got ${numeric}`)
    // float64 central differences, eps 1e-5: truncation O(eps^2) and rounding O(1e-16/eps) are far below 1e-6
    const rel = Math.abs(analytic - numeric) / Math.abs(numeric)
    assert.ok(rel < 1e-6, `analytic ${analytic} vs numeric ${numeric}: relative error ${rel}`)
  })
}
