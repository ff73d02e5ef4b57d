/**
 * The API client of docker/check.sh, run inside the service image on the compose network: it uses
 * only the public HTTP API and the WebSocket stream, as any client would.
 *
 *   start                     queries dataset + sso run on the tiny model; prints {"run_id"}
 *   watch RUN until=checkpoint [since_seq=N]   streams until an attempt trains with a checkpoint of
 *                             its own behind it, then prints the run's worker (container hostname)
 *   watch RUN until=succeeded [since_seq=N]    streams until the run succeeds (fails on failed/cancelled)
 *   workers N                 waits until N workers are live (GET /v1/workers)
 *
 * Env: SSO_URL (http://api:3000), SSO_API_KEY. Each command prints one JSON line and exits 0, or
 * prints why on stderr and exits 1.
 */

const base = process.env.SSO_URL ?? 'http://api:3000'
const key = process.env.SSO_API_KEY ?? ''
const headers = { authorization: `Bearer ${key}` }
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`)

interface Frame {
  type: string
  seq: number
  data: Record<string, unknown>
}

async function api(path: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { ...headers, ...init.headers } })
  const body = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${body}`)
  return JSON.parse(body)
}

/** Six queries, two a step, a checkpoint every two steps: a run that is mid-training for a while. */
async function start(): Promise<void> {
  const models = (await api('/v1/models')).items as { id: string; name: string }[]
  const tiny = models.find((m) => m.name === 'tiny')
  if (!tiny) throw new Error('the built-in tiny model is not listed')
  const prompts = ['Say hi.', 'Name a tree.', 'Count to two.', 'Greet me.', 'Name a fruit.', 'Say bye.']
  const dataset = await api('/v1/datasets?name=docker-check&format=queries', {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: prompts.map((prompt) => JSON.stringify({ prompt })).join('\n'),
  })
  const run = await api('/v1/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      method: 'sso',
      model_id: tiny.id,
      dataset_ids: [dataset.id],
      device: 'cpu',
      seed: 7,
      hyperparameters: {
        iterations: 3,
        batch_size: 2,
        lr: 1e-3,
        max_new_tokens: 24,
        generation_batch_size: 2,
        checkpoint_every: 2,
      },
    }),
  })
  print({ run_id: run.id, dataset_id: dataset.id, model_id: tiny.id })
}

/** Follows the run's stream from `sinceSeq` until `done(frames)` holds; rejects on a terminal failure. */
function follow(runId: string, sinceSeq: number, done: (frames: Frame[]) => boolean): Promise<Frame[]> {
  const url = new URL(`/v1/runs/${runId}/stream`, base.replace(/^http/, 'ws'))
  url.searchParams.set('since_seq', String(sinceSeq))
  url.searchParams.set('api_key', key)
  const ws = new WebSocket(url)
  const frames: Frame[] = []
  return new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data))
      if (message.type === 'error') return reject(new Error(`stream error: ${event.data}`))
      if (typeof message.seq !== 'number') return // subscribed / heartbeat / resync
      const last = frames.at(-1)?.seq ?? sinceSeq
      if (message.seq <= last) return reject(new Error(`seq went from ${last} to ${message.seq}`))
      frames.push(message)
      const status = message.type === 'status' ? message.data.status : undefined
      if (status === 'failed' || status === 'cancelled') {
        reject(new Error(`run ${status}: ${JSON.stringify(message.data)}`))
      } else if (done(frames)) {
        ws.close()
        resolve(frames)
      }
    }
    ws.onerror = () => reject(new Error(`WebSocket ${url.pathname} failed`))
    ws.onclose = (event) => reject(new Error(`WebSocket closed (${event.code}) before the awaited frame`))
  })
}

/** The latest attempt started in `frames` is training and has written a checkpoint since it started. */
function trainingWithCheckpoint(frames: Frame[]): boolean {
  const start = frames.findLastIndex((f) => f.type === 'status' && f.data.status === 'running')
  if (start < 0) return false
  const own = frames.slice(start)
  return (
    own.findLast((f) => f.type === 'phase')?.data.phase === 'training' &&
    own.some((f) => f.type === 'checkpoint')
  )
}

const succeeded = (frames: Frame[]) =>
  frames.some((f) => f.type === 'status' && f.data.status === 'succeeded')

async function watch(runId: string, until: string, sinceSeq: number): Promise<void> {
  const frames = await follow(runId, sinceSeq, until === 'checkpoint' ? trainingWithCheckpoint : succeeded)
  const run = await api(`/v1/runs/${runId}`)
  const workers = (await api('/v1/workers')).items as { id: string; hostname: string }[]
  const worker = workers.find((w) => w.id === run.worker_id)
  const attempts = frames.filter((f) => f.type === 'status' && f.data.status === 'running').length
  print({
    run_id: runId,
    status: run.status,
    attempt: run.attempt,
    attempts_seen: attempts,
    frames: frames.length,
    last_seq: frames.at(-1)?.seq,
    worker_hostname: worker?.hostname ?? null,
  })
}

async function workers(count: number): Promise<void> {
  for (;;) {
    const live = (await api('/v1/workers')).items as { hostname: string }[]
    if (live.length >= count) {
      print({ workers: live.map((w) => w.hostname) })
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

const [command, runId, ...rest] = process.argv.slice(2)
const option = (name: string) => rest.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1)
try {
  if (command === 'start') await start()
  else if (command === 'workers' && runId) await workers(Number(runId))
  else if (command === 'watch' && runId)
    await watch(runId, option('until') ?? 'succeeded', Number(option('since_seq') ?? 0))
  else
    throw new Error(
      'usage: check-run.ts start | workers N | watch RUN until=checkpoint|succeeded [since_seq=N]',
    )
  process.exit(0)
} catch (err) {
  process.stderr.write(`check-run: ${(err as Error).message}\n`)
  process.exit(1)
}
