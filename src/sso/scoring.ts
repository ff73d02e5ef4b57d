/** Reference log-probs for examples, scored role by role in batches. */
import type { Role } from './loss-types.ts'
import type { ScoredRow, TrainablePolicy } from './policy-port.ts'
import type { SsoRecord } from './records.ts'
import type { Example } from './training-phase.ts'

/** The seven scored sequences of an SSO record (x plain, x+ good principle, x- bad principle). */
export function ssoRows(r: SsoRecord): Record<Role, ScoredRow> {
  const x = { user: r.instruction, system: r.system || undefined, history: r.history }
  const xp = { user: r.instruction, system: r.p_system, history: r.history }
  const xn = { user: r.instruction, system: r.n_system, history: r.history }
  return {
    plain_chosen: { prompt: x, response: r.chosen },
    plain_rejected: { prompt: x, response: r.rejected },
    good_chosen: { prompt: xp, response: r.chosen },
    good_rejected: { prompt: xp, response: r.rejected },
    bad_raw: { prompt: xn, response: r.raw },
    bad_chosen: { prompt: xn, response: r.chosen },
    bad_rejected: { prompt: xn, response: r.rejected },
  }
}

/**
 * Fills `ref[role]` of every example for `roles` with the model's reference log-probs, then releases
 * the reference: a run needs nothing of it but these scores (a resumed phase reads them from its
 * checkpoint), so full fine-tuning trains without a second copy of the weights.
 */
export async function scoreReference(
  model: TrainablePolicy,
  examples: Example[],
  roles: readonly Role[],
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const total = roles.length * examples.length
  let done = 0
  for (const role of roles) {
    for (let start = 0; start < examples.length; start += batchSize) {
      const batch = examples.slice(start, start + batchSize)
      const scores = await model.score(
        batch.map((e) => e.rows[role]!),
        'reference',
      )
      batch.forEach((e, i) => {
        e.ref[role] = { sum: scores.sum[i], mean: scores.mean[i], count: scores.count[i] }
      })
      done += batch.length
      onProgress?.(done, total)
    }
  }
  await model.releaseReference()
}
