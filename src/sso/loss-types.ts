/**
 * The single source of the loss-type and objective lists. Kept apart from the graph builders so the
 * service can import the schemas without loading the engine.
 */
import Type, { type Static } from 'typebox'

/** Base pair losses: DPO on summed log-probs, IPO on length-normalised (mean) log-probs. */
export const BASE_LOSS_TYPES = ['dpo', 'ipo'] as const
export const BaseLossTypeSchema = Type.Enum(BASE_LOSS_TYPES)
export type BaseLossType = (typeof BASE_LOSS_TYPES)[number]

/** How W and G combine in SSO v1 (method doc: the paper's form and the reference refactor's form). */
export const COMBINATIONS = ['paper', 'refactored'] as const
export const CombinationSchema = Type.Enum(COMBINATIONS)
export type Combination = Static<typeof CombinationSchema>

/**
 * Scored sequences. Each is (context, response) with x plain, x+ good principle, x- bad principle:
 * plain_chosen (x, y+), plain_rejected (x, y-), good_chosen (x+, y+), good_rejected (x+, y-),
 * bad_raw (x-, y0), bad_chosen (x-, y+), bad_rejected (x-, y-).
 */
export const ROLES = [
  'plain_chosen',
  'plain_rejected',
  'good_chosen',
  'good_rejected',
  'bad_raw',
  'bad_chosen',
  'bad_rejected',
] as const
export type Role = (typeof ROLES)[number]

/** Objectives the trainer can build: preference (DPO/IPO), SSO v1 (and PBAA), SSO v2's generator, SFT. */
export const OBJECTIVE_NAMES = ['preference', 'sso', 'sso_generator', 'sft'] as const
export type ObjectiveName = (typeof OBJECTIVE_NAMES)[number]

export interface LossHyperparameters {
  loss_type: BaseLossType
  beta: number
  theta_g: number
  alpha: number
  use_w: boolean
  use_g: boolean
  combination: Combination
  sft_gamma: number
  generator_loss_type: BaseLossType
  generator_beta: number
  generator_sft_gamma: number
}

/** Which sequences each objective scores with the policy, and which reference log-probs it is fed. */
export const OBJECTIVE_ROLES: {
  [K in ObjectiveName]: { roles: readonly Role[]; refRoles: readonly Role[] }
} = {
  preference: { roles: ['plain_chosen', 'plain_rejected'], refRoles: ['plain_chosen', 'plain_rejected'] },
  sso: {
    roles: ROLES,
    refRoles: ['plain_chosen', 'plain_rejected', 'good_chosen', 'good_rejected', 'bad_raw', 'bad_chosen'],
  },
  sso_generator: {
    roles: ['good_chosen', 'good_rejected', 'bad_raw', 'bad_chosen'],
    refRoles: ['good_chosen', 'good_rejected', 'bad_raw', 'bad_chosen'],
  },
  sft: { roles: ['plain_chosen'], refRoles: [] },
}

/** Whether an SSO v1 loss has a G term: off for PBAA, `use_g: false` and θG 0. */
export const steers = (hp: Pick<LossHyperparameters, 'use_g' | 'theta_g'>): boolean =>
  hp.use_g && hp.theta_g > 0

/** The plain pair alone: what SSO v1 scores when its loss has no G term. */
const PLAIN_PAIR = ['plain_chosen', 'plain_rejected'] as const

/**
 * The roles a step of `objective` scores under these settings. Without G, SSO v1's loss reads only
 * l(y+|x) and l(y-|x) (W included), so the five principled rows (long system messages: most of a
 * step's tokens) are left out, and with them the metrics read off them (`sso/g`, `sso/gap`).
 */
export function objectiveRoles(
  objective: ObjectiveName,
  hp: Pick<LossHyperparameters, 'use_g' | 'theta_g'>,
): { roles: readonly Role[]; refRoles: readonly Role[] } {
  if (objective === 'sso' && !steers(hp)) return { roles: PLAIN_PAIR, refRoles: PLAIN_PAIR }
  return OBJECTIVE_ROLES[objective]
}

/** The context each role's response is scored under (see ROLES). */
const ROLE_CONTEXT: Record<Role, 'x' | 'x+' | 'x-'> = {
  plain_chosen: 'x',
  plain_rejected: 'x',
  good_chosen: 'x+',
  good_rejected: 'x+',
  bad_raw: 'x-',
  bad_chosen: 'x-',
  bad_rejected: 'x-',
}

/**
 * How the sequences of one example share prompts: the distinct contexts among `roles` and the most
 * roles on one context. A training step packs each context's sequences into one row (a prompt tree,
 * src/model/batch.ts).
 */
export function sharedPrompts(roles: readonly Role[]): { prompts: number; branches: number } {
  const perContext = new Map<string, number>()
  for (const role of roles) perContext.set(ROLE_CONTEXT[role], (perContext.get(ROLE_CONTEXT[role]) ?? 0) + 1)
  return { prompts: perContext.size, branches: Math.max(...perContext.values()) }
}
