/** The fields of a run (GET /v1/runs/:id) that the CLI shows. */

export const TERMINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const

export interface RunLike {
  id: string
  status: string
  method?: string
  model_id?: string
  current_step?: number
  created_at?: string
  error?: { code: string; message: string } | null
  [key: string]: unknown
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status)
}

export function runRow(run: RunLike): Record<string, unknown> {
  return {
    id: run.id,
    method: run.method,
    status: run.status,
    step: run.current_step,
    model: run.model_id,
    created: run.created_at,
  }
}
