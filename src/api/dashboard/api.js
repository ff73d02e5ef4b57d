// The dashboard's view of the service: REST calls with the stored API key, and a run's WebSocket
// stream with reconnects that resume after the last step seen (frames carry a monotonic seq).

const KEY_STORAGE = 'sso.apiKey'

/** Run statuses after which nothing more happens. */
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled'])
/** History points per metric key asked from the server (it downsamples); live points are appended. */
export const HISTORY_POINTS = 1000

export function getApiKey() {
  return localStorage.getItem(KEY_STORAGE) ?? ''
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key)
  else localStorage.removeItem(KEY_STORAGE)
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

/**
 * `body` goes as JSON; `raw` (with its `contentType`) as it is, for uploads. The answer is parsed as
 * JSON unless `asText` (JSONL contents).
 */
export async function request(method, path, { query, body, raw, contentType, asText = false } = {}) {
  const url = new URL(path, location.origin)
  for (const [k, v] of Object.entries(query ?? {}))
    if (v !== undefined && v !== '') url.searchParams.set(k, v)
  const headers = {}
  const key = getApiKey()
  if (key) headers.authorization = `Bearer ${key}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (raw !== undefined) headers['content-type'] = contentType
  const res = await fetch(url, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  })
  const text = await res.text()
  if (res.ok && asText) return text
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = { detail: text }
  }
  if (!res.ok) throw new ApiError(res.status, json)
  return json
}

const runPath = (id, tail = '') => `/v1/runs/${encodeURIComponent(id)}${tail}`

export const api = {
  listRuns: (query) => request('GET', '/v1/runs', { query }),
  getRun: (id) => request('GET', runPath(id)),
  createRun: (body) => request('POST', '/v1/runs', { body }),
  action: (id, name) => request('POST', runPath(id, `/${name}`), { body: {} }),
  events: (id, query) => request('GET', runPath(id, '/events'), { query }),
  samples: (id, query) => request('GET', runPath(id, '/samples'), { query }),
  listModels: () => request('GET', '/v1/models'),
  getModel: (id) => request('GET', `/v1/models/${encodeURIComponent(id)}`),
  registerRunModel: (runId, name) => request('POST', '/v1/models', { body: { name, run_id: runId } }),
  listWorkers: () => request('GET', '/v1/workers'),
  whoami: () => request('GET', '/v1/whoami'),
  listDatasets: (query) => request('GET', '/v1/datasets', { query }),
  uploadDataset: (name, format, text) =>
    request('POST', '/v1/datasets', {
      query: { name, format },
      raw: text,
      contentType: 'application/x-ndjson',
    }),
  datasetContent: (id) => request('GET', `/v1/datasets/${encodeURIComponent(id)}/content`, { asText: true }),
  deleteDataset: (id) => request('DELETE', `/v1/datasets/${encodeURIComponent(id)}`),
  listPrincipleSets: () => request('GET', '/v1/principle-sets'),
  getPrincipleSet: (id) => request('GET', `/v1/principle-sets/${encodeURIComponent(id)}`),
  createPrincipleSet: (body) => request('POST', '/v1/principle-sets', { body }),
  updatePrincipleSet: (id, body) =>
    request('PATCH', `/v1/principle-sets/${encodeURIComponent(id)}`, { body }),
  deletePrincipleSet: (id) => request('DELETE', `/v1/principle-sets/${encodeURIComponent(id)}`),

  /** Downsampled history: Map key → [step, value][] (the server keeps at most maxPoints per key). */
  async metrics(id, { keys, maxPoints, fromStep } = {}) {
    const res = await request('GET', runPath(id, '/metrics'), {
      query: { keys: keys?.join(','), max_points: maxPoints, step_from: fromStep },
    })
    return metricsToSeries(res)
  },
}

/** `{ series: [{ key, points: [[step, value]] }] }` → Map key → [step, value][]. */
export function metricsToSeries(res) {
  return new Map(res.series.map((s) => [s.key, s.points]))
}

/**
 * Follows a run's stream from `sinceStep`. `onFrame(frame)` sees each frame once; the socket reconnects
 * (with backoff) after a drop, asking for the steps after the last one received. Returns a stop function.
 */
export function followRun(id, sinceStep, onFrame, onState = () => {}) {
  let lastSeq
  let stopped = false
  let ws
  let attempts = 0
  let timer
  const connect = () => {
    const url = new URL(runPath(id, '/stream'), location.origin)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    // First connection: after the last step already charted; reconnects: exactly after the last frame.
    if (lastSeq === undefined) url.searchParams.set('since_step', String(sinceStep))
    else url.searchParams.set('since_seq', String(lastSeq))
    ws = new WebSocket(url)
    ws.onopen = () => {
      // The key goes in the first message, not the URL, so it stays out of logs and history.
      ws.send(JSON.stringify({ type: 'subscribe', api_key: getApiKey() ?? '' }))
      attempts = 0
      onState('live')
    }
    ws.onmessage = (msg) => {
      let frame
      try {
        frame = JSON.parse(msg.data)
      } catch {
        return
      }
      if (typeof frame.seq !== 'number') return // control message: subscribed, heartbeat, resync
      if (lastSeq !== undefined && frame.seq <= lastSeq) return
      lastSeq = frame.seq
      onFrame(frame)
    }
    ws.onclose = () => {
      if (stopped) return
      onState('reconnecting')
      attempts++
      timer = setTimeout(connect, Math.min(10000, 300 * 2 ** attempts))
    }
  }
  connect()
  return () => {
    stopped = true
    clearTimeout(timer)
    ws?.close()
  }
}
