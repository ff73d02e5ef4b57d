import { createHmac } from 'node:crypto'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { PgBoss } from './boss.ts'
import { WEBHOOK_QUEUE, type WebhookJob } from './jobs.ts'

/**
 * `x-sso-signature: sha256=<hex>` is HMAC-SHA256 over `<x-sso-timestamp>.<body>`, so a receiver can
 * check both the sender and the freshness (reject old timestamps to stop replays).
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** Delivers queued webhook jobs to WEBHOOK_URL; a non-2xx answer fails the job and pg-boss retries it. */
export async function startWebhookDelivery(boss: PgBoss, config: Config, log: Logger): Promise<void> {
  const url = config.WEBHOOK_URL
  if (!url) return
  await boss.work<WebhookJob>(WEBHOOK_QUEUE, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]) => {
    const body = JSON.stringify(job.data)
    const timestamp = String(Math.floor(Date.now() / 1000))
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-sso-event': job.data.event,
      'x-sso-delivery': job.id,
      'x-sso-timestamp': timestamp,
    }
    if (config.WEBHOOK_SECRET)
      headers['x-sso-signature'] = signWebhook(config.WEBHOOK_SECRET, timestamp, body)
    const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) })
    if (!res.ok) {
      log.warn({ status: res.status, runId: job.data.run_id }, 'webhook delivery refused; will retry')
      // The job's stored error names the host only: hooks often carry their token in the path.
      throw new AppError('internal', `webhook at ${new URL(url).host} answered ${res.status}`)
    }
  })
}
