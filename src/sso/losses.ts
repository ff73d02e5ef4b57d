/**
 * Loss graphs of the method (shared/docs/sso-method.md), built on the engine from per-sequence log-probs.
 * Every objective returns a per-example loss of shape (N) and scalar metrics with TRL's names; the
 * trainer's step graph takes the mean. There is no batch-size restriction: all ops are elementwise
 * over N.
 */
import {
  add,
  cast,
  type Graph,
  greater,
  mul,
  neg,
  reduceMean,
  sigmoid,
  softplus,
  sub,
  type Tensor,
} from '../engine/index.ts'
import {
  type BaseLossType,
  type LossHyperparameters,
  type ObjectiveName,
  type Role,
  steers,
} from './loss-types.ts'

export type { LossHyperparameters, ObjectiveName }

/** Summed and mean token log-probs of one role's sequences, each of shape (N). */
export interface SequenceLogps {
  sum: Tensor
  mean: Tensor
}

export interface ObjectiveInputs {
  policy: Partial<Record<Role, SequenceLogps>>
  /** Reference log-probs (the policy at the start of the iteration), fed as graph inputs. */
  ref: Partial<Record<Role, SequenceLogps>>
}

export interface ObjectiveOutput {
  /** (N) */
  perExample: Tensor
  /** Scalars. */
  metrics: Record<string, Tensor>
}

const c = (g: Graph, v: number, like: Tensor): Tensor => g.constant(v, like.dtype)
const scale = (g: Graph, x: Tensor, v: number): Tensor => mul(g, x, c(g, v, x))
const meanOf = (g: Graph, x: Tensor): Tensor => reduceMean(g, x, { axes: [0] })

function logps(inputs: Partial<Record<Role, SequenceLogps>>, role: Role): SequenceLogps {
  const t = inputs[role]
  if (!t) throw new Error(`objective needs log-probs of role '${role}'`)
  return t
}

/** One preference pair: context-specific role names of the preferred (a) and dispreferred (b) responses. */
interface PairRoles {
  a: Role
  b: Role
}

/** The implicit rewards of a pair under a base loss: beta * (logp - ref logp), summed (DPO) or mean (IPO). */
function pairRewards(g: Graph, m: ObjectiveInputs, pair: PairRoles, type: BaseLossType, beta: number) {
  const pick = (s: SequenceLogps) => (type === 'dpo' ? s.sum : s.mean)
  const a = pick(logps(m.policy, pair.a))
  const b = pick(logps(m.policy, pair.b))
  const chosen = scale(g, sub(g, a, pick(logps(m.ref, pair.a))), beta)
  const rejected = scale(g, sub(g, b, pick(logps(m.ref, pair.b))), beta)
  return { chosen, rejected, a, b }
}

/** Base pair losses of shape (N), from the log-ratio difference. */
export const LOSSES: {
  [K in BaseLossType]: (g: Graph, m: ObjectiveInputs, pair: PairRoles, beta: number) => Tensor
} = {
  // DPO (Rafailov et al. 2023, eq. 7): -log sigmoid(beta * delta) = softplus(-beta * delta)
  dpo: (g, m, pair, beta) => {
    const r = pairRewards(g, m, pair, 'dpo', beta)
    return softplus(g, neg(g, sub(g, r.chosen, r.rejected)))
  },
  // IPO (Azar et al. 2023, eq. 17), length-normalised: (h - 1/(2 beta))^2 with h on mean log-probs
  ipo: (g, m, pair, beta) => {
    const r = pairRewards(g, m, pair, 'ipo', 1)
    const h = sub(g, sub(g, r.chosen, r.rejected), c(g, 1 / (2 * beta), r.chosen))
    return mul(g, h, h)
  },
}

const MAIN: PairRoles = { a: 'plain_chosen', b: 'plain_rejected' }
const GOOD: PairRoles = { a: 'good_chosen', b: 'good_rejected' }
/** The n pair prefers the raw response over y+ under the bad principle. */
const BAD: PairRoles = { a: 'bad_raw', b: 'bad_chosen' }

/** TRL's preference metrics of a pair (scalars). */
function preferenceMetrics(g: Graph, m: ObjectiveInputs, pair: PairRoles, type: BaseLossType, beta: number) {
  const r = pairRewards(g, m, pair, type, beta)
  const margins = sub(g, r.chosen, r.rejected)
  return {
    'rewards/chosen': meanOf(g, r.chosen),
    'rewards/rejected': meanOf(g, r.rejected),
    'rewards/margins': meanOf(g, margins),
    'rewards/accuracies': meanOf(g, cast(g, greater(g, r.chosen, r.rejected), { to: margins.dtype })),
    'logps/chosen': meanOf(g, r.a),
    'logps/rejected': meanOf(g, r.b),
  }
}

/** G = Lbase(x+; y+ > y-) + Lbase(x-; y0 > y+), and the gap l(y+|x+) - l(y-|x-), both (N). */
function steeringTerms(g: Graph, m: ObjectiveInputs, type: BaseLossType, beta: number) {
  const gLoss = add(g, LOSSES[type](g, m, GOOD, beta), LOSSES[type](g, m, BAD, beta))
  const gap = sub(g, logps(m.policy, 'good_chosen').mean, logps(m.policy, 'bad_rejected').mean)
  return { gLoss, gap }
}

export interface Objective {
  build(g: Graph, m: ObjectiveInputs, hp: LossHyperparameters): ObjectiveOutput
}

/** Plain DPO/IPO on (x, y+, y-): offline dpo/ipo and the policy step of SSO v2. */
const preference: Objective = {
  build(g, m, hp) {
    const perExample = LOSSES[hp.loss_type](g, m, MAIN, hp.beta)
    return {
      perExample,
      metrics: { loss: meanOf(g, perExample), ...preferenceMetrics(g, m, MAIN, hp.loss_type, hp.beta) },
    }
  },
}

/**
 * SSO v1. W is not detached: its gradient raises l(y+|x) and l(y-|x) (weights alpha : 1-alpha).
 * paper: W * (L_main + thetaG*G + SFT); refactored: L_main + SFT + W*thetaG*G. The SFT term is added
 * before W is applied. use_w=false sets W := 1, use_g=false sets thetaG := 0 (both off = PBAA).
 */
const sso: Objective = {
  build(g, m, hp) {
    const base = LOSSES[hp.loss_type]
    const lMain = base(g, m, MAIN, hp.beta)
    const onChosen = logps(m.policy, 'plain_chosen').mean
    const onRejected = logps(m.policy, 'plain_rejected').mean
    // W = sigmoid(-(alpha l(y+|x) + (1-alpha) l(y-|x)))
    const w = hp.use_w
      ? sigmoid(g, neg(g, add(g, scale(g, onChosen, hp.alpha), scale(g, onRejected, 1 - hp.alpha))))
      : c(g, 1, lMain)
    let main = lMain
    // without G the principled rows are not scored at all (objectiveRoles)
    const steering = steers(hp) ? steeringTerms(g, m, hp.loss_type, hp.beta) : undefined
    if (hp.sft_gamma > 0) {
      // gamma * -(l(y+|x) + thetaG l(y+|x+) + thetaG l(y0|x-)); without G, thetaG is 0 and the
      // principled rows are not scored
      let nll = onChosen
      if (steering) {
        const principled = add(g, logps(m.policy, 'good_chosen').mean, logps(m.policy, 'bad_raw').mean)
        nll = add(g, nll, scale(g, principled, hp.theta_g))
      }
      main = add(g, main, scale(g, nll, -hp.sft_gamma))
    }
    const steer = steering && scale(g, steering.gLoss, hp.theta_g)
    const perExample =
      hp.combination === 'paper'
        ? mul(g, w, steer ? add(g, main, steer) : main)
        : steer
          ? add(g, main, mul(g, w, steer))
          : main
    return {
      perExample,
      metrics: {
        loss: meanOf(g, perExample),
        ...preferenceMetrics(g, m, MAIN, hp.loss_type, hp.beta),
        // Without W the weight in use is 1; kept per example so the output stays a batch mean.
        'sso/w_mean': meanOf(g, hp.use_w ? w : add(g, scale(g, onChosen, 0), w)),
        'sso/l_main': meanOf(g, lMain),
        'sso/on_policy_chosen': meanOf(g, onChosen),
        'sso/on_policy_rejected': meanOf(g, onRejected),
        ...(steering && { 'sso/g': meanOf(g, steering.gLoss), 'sso/gap': meanOf(g, steering.gap) }),
      },
    }
  },
}

/** SSO v2 generator: L+ + L- with L+ = Lbase(x+; y+ > y-) - gamma l(y+|x+), L- = Lbase(x-; y0 > y+) - gamma l(y0|x-). */
const ssoGenerator: Objective = {
  build(g, m, hp) {
    const base = LOSSES[hp.generator_loss_type]
    const gamma = hp.generator_sft_gamma
    const lPos = sub(
      g,
      base(g, m, GOOD, hp.generator_beta),
      scale(g, logps(m.policy, 'good_chosen').mean, gamma),
    )
    const lNeg = sub(g, base(g, m, BAD, hp.generator_beta), scale(g, logps(m.policy, 'bad_raw').mean, gamma))
    const perExample = add(g, lPos, lNeg)
    return {
      perExample,
      metrics: {
        loss: meanOf(g, perExample),
        'sso/l_pos': meanOf(g, lPos),
        'sso/l_neg': meanOf(g, lNeg),
        ...preferenceMetrics(g, m, GOOD, hp.generator_loss_type, hp.generator_beta),
      },
    }
  },
}

/** Supervised fine-tuning: mean token negative log-likelihood of the response (role plain_chosen). */
const sft: Objective = {
  build(g, m) {
    const perExample = neg(g, logps(m.policy, 'plain_chosen').mean)
    return { perExample, metrics: { loss: meanOf(g, perExample) } }
  },
}

/** Graph builders per objective; the roles each needs are in OBJECTIVE_ROLES (loss-types.ts). */
export const OBJECTIVES: { [K in ObjectiveName]: Objective } = {
  preference,
  sso,
  sso_generator: ssoGenerator,
  sft,
}
