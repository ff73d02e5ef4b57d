/**
 * Loss graphs against an independent float64 computation in plain TypeScript, golden numbers computed
 * by hand (float64, outside this code base), and central finite differences of each full loss with
 * respect to its log-prob inputs.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Graph, grad, type Tensor } from '../../src/engine/index.ts'
import { OBJECTIVE_ROLES, objectiveRoles, type Role, sharedPrompts } from '../../src/sso/loss-types.ts'
import {
  type LossHyperparameters,
  OBJECTIVES,
  type ObjectiveName,
  type SequenceLogps,
} from '../../src/sso/losses.ts'
import { bradleyTerryLoss } from '../../src/sso/reward-model.ts'
import { type Float64Feed, graphRunner } from './helpers/run-graph.ts'

type Values = Record<string, { sum: number[]; mean: number[] }>

const POLICY: Values = {
  plain_chosen: { sum: [-12.0, -30.5, -8.25], mean: [-1.2, -1.525, -0.825] },
  plain_rejected: { sum: [-15.0, -28.0, -20.5], mean: [-1.5, -1.4, -2.05] },
  good_chosen: { sum: [-10.0, -27.0, -7.5], mean: [-1.0, -1.35, -0.75] },
  good_rejected: { sum: [-18.0, -31.0, -22.0], mean: [-1.8, -1.55, -2.2] },
  bad_raw: { sum: [-14.0, -25.0, -9.0], mean: [-1.4, -1.25, -0.9] },
  bad_chosen: { sum: [-16.0, -33.0, -10.0], mean: [-1.6, -1.65, -1.0] },
  bad_rejected: { sum: [-11.0, -26.0, -18.0], mean: [-1.1, -1.3, -1.8] },
}
const REF: Values = {
  plain_chosen: { sum: [-12.5, -30.0, -9.0], mean: [-1.25, -1.5, -0.9] },
  plain_rejected: { sum: [-14.5, -29.0, -20.0], mean: [-1.45, -1.45, -2.0] },
  good_chosen: { sum: [-10.5, -27.5, -8.0], mean: [-1.05, -1.375, -0.8] },
  good_rejected: { sum: [-17.5, -30.0, -21.0], mean: [-1.75, -1.5, -2.1] },
  bad_raw: { sum: [-14.5, -24.0, -9.5], mean: [-1.45, -1.2, -0.95] },
  bad_chosen: { sum: [-15.5, -32.0, -10.5], mean: [-1.55, -1.6, -1.05] },
}
const N = 3

const DEFAULTS: LossHyperparameters = {
  loss_type: 'ipo',
  beta: 0.2,
  theta_g: 0.1,
  alpha: 0.66,
  use_w: true,
  use_g: true,
  combination: 'paper',
  sft_gamma: 0,
  generator_loss_type: 'dpo',
  generator_beta: 0.1,
  generator_sft_gamma: 0.1,
}

// ---- independent reference (float64, per example, written from the method doc) ----
const softplus = (x: number) => Math.log1p(Math.exp(x))
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x))
function base(type: 'dpo' | 'ipo', a: string, b: string, beta: number, i: number, p = POLICY): number {
  const k = type === 'dpo' ? 'sum' : 'mean'
  const d = p[a][k][i] - p[b][k][i] - (REF[a][k][i] - REF[b][k][i])
  return type === 'dpo' ? softplus(-beta * d) : (d - 1 / (2 * beta)) ** 2
}
function reference(name: ObjectiveName, hp: LossHyperparameters, p = POLICY): number {
  let total = 0
  for (let i = 0; i < N; i++) {
    if (name === 'preference') total += base(hp.loss_type, 'plain_chosen', 'plain_rejected', hp.beta, i, p)
    if (name === 'sft') total += -p.plain_chosen.mean[i]
    if (name === 'sso_generator') {
      const t = hp.generator_loss_type
      const gm = hp.generator_sft_gamma
      total +=
        base(t, 'good_chosen', 'good_rejected', hp.generator_beta, i, p) -
        gm * p.good_chosen.mean[i] +
        base(t, 'bad_raw', 'bad_chosen', hp.generator_beta, i, p) -
        gm * p.bad_raw.mean[i]
    }
    if (name === 'sso') {
      const th = hp.use_g ? hp.theta_g : 0
      const lMain = base(hp.loss_type, 'plain_chosen', 'plain_rejected', hp.beta, i, p)
      const G =
        base(hp.loss_type, 'good_chosen', 'good_rejected', hp.beta, i, p) +
        base(hp.loss_type, 'bad_raw', 'bad_chosen', hp.beta, i, p)
      const W = hp.use_w
        ? sigmoid(-(hp.alpha * p.plain_chosen.mean[i] + (1 - hp.alpha) * p.plain_rejected.mean[i]))
        : 1
      const main =
        lMain - hp.sft_gamma * (p.plain_chosen.mean[i] + th * p.good_chosen.mean[i] + th * p.bad_raw.mean[i])
      total += hp.combination === 'paper' ? W * (main + th * G) : main + W * th * G
    }
  }
  return total / N
}

interface Case {
  label: string
  objective: ObjectiveName
  hp: Partial<LossHyperparameters>
  /** Computed by hand in float64, independently of both implementations. */
  golden: number
}
const CASES: Case[] = [
  { label: 'DPO', objective: 'preference', hp: { loss_type: 'dpo', beta: 0.1 }, golden: 0.682650914393424 },
  { label: 'IPO', objective: 'preference', hp: { loss_type: 'ipo', beta: 0.2 }, golden: 6.010416666666667 },
  { label: 'SSO v1 IPO paper', objective: 'sso', hp: {}, golden: 5.705235606253414 },
  {
    label: 'SSO v1 DPO refactored',
    objective: 'sso',
    hp: { loss_type: 'dpo', beta: 0.1, theta_g: 0.5, combination: 'refactored' },
    golden: 1.199926989573129,
  },
  { label: 'SSO v1 without W', objective: 'sso', hp: { use_w: false }, golden: 7.191187500000001 },
  {
    label: 'PBAA (no W, no G)',
    objective: 'sso',
    hp: { use_w: false, use_g: false },
    golden: 6.010416666666667,
  },
  { label: 'SSO v1 with SFT term', objective: 'sso', hp: { sft_gamma: 0.3 }, golden: 6.040719517413474 },
  {
    label: 'PBAA with SFT term (only l(y+|x), no principled rows)',
    objective: 'sso',
    hp: { use_w: false, use_g: false, sft_gamma: 0.3 },
    golden: 6.365416666666667,
  },
  { label: 'SSO v2 generator', objective: 'sso_generator', hp: {}, golden: 1.5273339256153655 },
  { label: 'SFT', objective: 'sft', hp: {}, golden: 1.1833333333333333 },
]

/** A float64 graph: log-prob inputs, the objective's loss and metrics, and d loss / d policy inputs. */
async function buildSession(objective: ObjectiveName, hp: LossHyperparameters) {
  const g = new Graph({ name: `loss-${objective}` })
  // only the roles the objective reads under these settings: a missing one fails the build
  const obj = { ...objectiveRoles(objective, hp), ...OBJECTIVES[objective] }
  const inputs = (prefix: string, roles: readonly Role[]) =>
    Object.fromEntries(
      roles.map((r) => [
        r,
        {
          sum: g.input(`${prefix}/${r}/sum`, 'float64', ['n']),
          mean: g.input(`${prefix}/${r}/mean`, 'float64', ['n']),
        },
      ]),
    ) as Record<Role, SequenceLogps>
  const policy = inputs('policy', obj.roles)
  const ref = inputs('ref', obj.refRoles)
  const out = obj.build(g, { policy, ref }, hp)
  for (const [name, t] of Object.entries(out.metrics)) g.output(t, name)
  const wrt: Tensor[] = obj.roles.flatMap((r) => [policy[r].sum, policy[r].mean])
  const grads = grad(g, out.metrics.loss, wrt)
  const gradNames = wrt.map((t, i) => {
    const name = `d/${t.name}`
    const gt = grads[i]
    if (gt) g.output(gt, name)
    return gt ? name : undefined
  })
  const session = await graphRunner(g)
  const feeds = (p: Values) => {
    const f: Record<string, Float64Feed> = {}
    for (const r of obj.roles) {
      f[`policy/${r}/sum`] = { dims: [N], data: Float64Array.from(p[r].sum) }
      f[`policy/${r}/mean`] = { dims: [N], data: Float64Array.from(p[r].mean) }
    }
    for (const r of obj.refRoles) {
      f[`ref/${r}/sum`] = { dims: [N], data: Float64Array.from(REF[r].sum) }
      f[`ref/${r}/mean`] = { dims: [N], data: Float64Array.from(REF[r].mean) }
    }
    return f
  }
  return { session, feeds, wrt, gradNames, metricNames: Object.keys(out.metrics) }
}

const scalar = (t: Float64Array) => t[0]

for (const c of CASES) {
  test(`${c.label}: graph loss equals the float64 reference and the golden value; gradients match finite differences`, async () => {
    const hp = { ...DEFAULTS, ...c.hp }
    const expected = reference(c.objective, hp)
    assert.ok(Math.abs(expected - c.golden) < 1e-12, `reference ${expected} vs golden ${c.golden}`)
    const { session, feeds, wrt, gradNames } = await buildSession(c.objective, hp)
    const out = await session.run(feeds(POLICY))
    assert.ok(
      Math.abs(scalar(out.loss) - c.golden) < 1e-12,
      `graph ${scalar(out.loss)} vs golden ${c.golden}`,
    )
    // central differences in float64, h = 1e-6: truncation error ~h^2, rounding ~1e-16/h
    const h = 1e-6
    for (const [k, t] of wrt.entries()) {
      const [, role, kind] = t.name.split('/') as [string, Role, 'sum' | 'mean']
      for (let i = 0; i < N; i++) {
        const shifted = (d: number): number => {
          const p = structuredClone(POLICY)
          p[role][kind][i] += d
          return reference(c.objective, hp, p)
        }
        const fd = (shifted(h) - shifted(-h)) / (2 * h)
        const name = gradNames[k]
        const analytic = name ? out[name][i] : 0
        assert.ok(
          Math.abs(analytic - fd) <= 1e-6 * Math.max(1, Math.abs(fd)),
          `${t.name}[${i}]: graph gradient ${analytic} vs finite difference ${fd}`,
        )
      }
    }
  })
}

test('metrics: TRL names and SSO diagnostics equal the reference values', async () => {
  const hp = { ...DEFAULTS, loss_type: 'dpo' as const, beta: 0.1 }
  const { session, feeds } = await buildSession('sso', hp)
  const out = await session.run(feeds(POLICY))
  const mean = (f: (i: number) => number) => (f(0) + f(1) + f(2)) / 3
  const rc = (i: number) => 0.1 * (POLICY.plain_chosen.sum[i] - REF.plain_chosen.sum[i])
  const rr = (i: number) => 0.1 * (POLICY.plain_rejected.sum[i] - REF.plain_rejected.sum[i])
  const expected: Record<string, number> = {
    'rewards/chosen': mean(rc),
    'rewards/rejected': mean(rr),
    'rewards/margins': mean((i) => rc(i) - rr(i)),
    'rewards/accuracies': mean((i) => (rc(i) > rr(i) ? 1 : 0)),
    'logps/chosen': mean((i) => POLICY.plain_chosen.sum[i]),
    'logps/rejected': mean((i) => POLICY.plain_rejected.sum[i]),
    'sso/w_mean': mean((i) =>
      sigmoid(-(0.66 * POLICY.plain_chosen.mean[i] + 0.34 * POLICY.plain_rejected.mean[i])),
    ),
    'sso/l_main': mean((i) => base('dpo', 'plain_chosen', 'plain_rejected', 0.1, i)),
    'sso/g': mean(
      (i) =>
        base('dpo', 'good_chosen', 'good_rejected', 0.1, i) + base('dpo', 'bad_raw', 'bad_chosen', 0.1, i),
    ),
    'sso/on_policy_chosen': mean((i) => POLICY.plain_chosen.mean[i]),
    'sso/on_policy_rejected': mean((i) => POLICY.plain_rejected.mean[i]),
    'sso/gap': mean((i) => POLICY.good_chosen.mean[i] - POLICY.bad_rejected.mean[i]),
  }
  for (const [name, v] of Object.entries(expected)) {
    assert.ok(Math.abs(scalar(out[name]) - v) < 1e-12, `${name}: ${scalar(out[name])} vs ${v}`)
  }
})

test('without G a step scores the plain pair alone, and reports no G or gap', async () => {
  for (const hp of [
    { ...DEFAULTS, use_g: false },
    { ...DEFAULTS, theta_g: 0 },
    { ...DEFAULTS, use_w: false, use_g: false },
  ]) {
    assert.deepEqual(objectiveRoles('sso', hp).roles, ['plain_chosen', 'plain_rejected'])
    const { metricNames } = await buildSession('sso', hp)
    assert.ok(!metricNames.includes('sso/g') && !metricNames.includes('sso/gap'), metricNames.join(', '))
  }
  assert.deepEqual(objectiveRoles('sso', DEFAULTS), OBJECTIVE_ROLES.sso)
})

test("an example's sequences share three prompts in SSO, one in DPO, two in the generator's step", () => {
  const shared = (objective: keyof typeof OBJECTIVE_ROLES) => sharedPrompts(OBJECTIVE_ROLES[objective].roles)
  assert.deepEqual(shared('sso'), { prompts: 3, branches: 3 })
  assert.deepEqual(shared('preference'), { prompts: 1, branches: 2 })
  assert.deepEqual(shared('sso_generator'), { prompts: 2, branches: 2 })
  assert.deepEqual(shared('sft'), { prompts: 1, branches: 1 })
  assert.deepEqual(sharedPrompts(objectiveRoles('sso', { ...DEFAULTS, use_g: false }).roles), {
    prompts: 1,
    branches: 2,
  })
})

test('without W the reported sso/w_mean is the weight in use, 1', async () => {
  const { session, feeds } = await buildSession('sso', { ...DEFAULTS, use_w: false })
  const out = await session.run(feeds(POLICY))
  assert.equal(scalar(out['sso/w_mean']), 1)
})

test('Bradley-Terry reward loss: value and gradient against a float64 hand computation', async () => {
  const g = new Graph({ name: 'bt' })
  const rc = g.input('chosen', 'float64', ['n'])
  const rr = g.input('rejected', 'float64', ['n'])
  const { metrics } = bradleyTerryLoss(g, rc, rr)
  for (const [name, t] of Object.entries(metrics)) g.output(t, name)
  const [dc, dr] = grad(g, metrics.loss, [rc, rr])
  g.output(dc!, 'd/chosen')
  g.output(dr!, 'd/rejected')
  const session = await graphRunner(g)
  const chosen = [1.5, -0.25, 0.0]
  const rejected = [0.5, 0.75, -2.0]
  const out = await session.run({
    chosen: { dims: [3], data: Float64Array.from(chosen) },
    rejected: { dims: [3], data: Float64Array.from(rejected) },
  })
  // margins 1, -1, 2: loss = mean(log1p(e^-1), log1p(e^1), log1p(e^-2)), computed by hand in float64
  const golden = (0.31326168751822286 + 1.3132616875182228 + 0.1269280110429725) / 3
  assert.ok(Math.abs(scalar(out.loss) - golden) < 1e-12, `${scalar(out.loss)} vs ${golden}`)
  assert.equal(scalar(out['rewards/accuracies']), 2 / 3)
  // d/d r_c of mean softplus(-(r_c - r_r)) = -sigmoid(-(r_c - r_r)) / n
  for (let i = 0; i < 3; i++) {
    const expected = -sigmoid(-(chosen[i] - rejected[i])) / 3
    assert.ok(Math.abs(out['d/chosen'][i] - expected) < 1e-12)
    assert.ok(Math.abs(out['d/rejected'][i] + expected) < 1e-12)
  }
})
