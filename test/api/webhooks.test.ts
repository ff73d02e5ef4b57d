import assert from 'node:assert/strict'
import http from 'node:http'
import { after, test } from 'node:test'
import { signWebhook, startWebhookDelivery } from '../../src/queue/webhook-delivery.ts'
import { auth, buildTestApp } from '../helpers/build-app.ts'
import { createTinyRun } from '../helpers/datasets.ts'
import { stopEmbeddedServer, testLog } from '../helpers/db.ts'

after(stopEmbeddedServer)

test('run status changes are POSTed to WEBHOOK_URL, signed with HMAC-SHA256', async (t) => {
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = []
  const receiver = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => receiver.close(() => r())))
  const port = (receiver.address() as { port: number }).port
  const secret = 'a-webhook-secret-of-some-length'
  const app = await buildTestApp(t, 'embedded', {
    env: { WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: secret },
  })
  await startWebhookDelivery(app.boss, app.config, testLog)

  const run = (await createTinyRun(app)).json()
  await app.app.inject({
    method: 'POST',
    url: `/v1/runs/${run.id}/cancel`,
    headers: auth(app.keys.write),
    payload: {},
  })

  const deadline = Date.now() + 20_000
  while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  const statuses = received.map((d) => JSON.parse(d.body)).sort((a, b) => a.at.localeCompare(b.at))
  assert.deepEqual(
    statuses.map((p) => [p.run_id, p.status]),
    [
      [run.id, 'queued'],
      [run.id, 'cancelled'],
    ],
  )
  for (const d of received) {
    const timestamp = String(d.headers['x-sso-timestamp'])
    assert.equal(d.headers['x-sso-signature'], signWebhook(secret, timestamp, d.body))
    assert.equal(d.headers['x-sso-event'], 'run.status_changed')
  }
})
