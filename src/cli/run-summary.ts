/**
 * The fields of a run (as the service returns it) that the CLI shows, read defensively so that
 * optional fields missing from a response never crash a listing.
 */

export const TERMINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const

export interface RunLike {
  id: string
  status: string
  method?: string
  [key: string]: unknown
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status)
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

/** Current and total steps, wherever the service keeps them (top level or under `progress`). */
export function runProgress(run: RunLike): { step?: number; totalSteps?: number } {
  const progress = (run.progress ?? {}) as Record<string, unknown>
  return {
    step: num(progress.step) ?? num(run.step) ?? num(run.current_step),
    totalSteps: num(progress.total_steps) ?? num(run.total_steps),
  }
}

export function runRow(run: RunLike): Record<string, unknown> {
  const { step, totalSteps } = runProgress(run)
  return {
    id: run.id,
    method: run.method,
    status: run.status,
    step: step === undefined ? undefined : totalSteps ? `${step}/${totalSteps}` : step,
    model:
      typeof run.model === 'object' && run.model
        ? (run.model as { id?: unknown }).id
        : (run.model ?? run.model_id),
    created: run.created_at,
  }
}
