/**
 * A small client for the service's REST API (fetch, no dependency). Failures become typed errors that
 * carry the service's problem document, so the CLI can print its detail.
 */
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.ts'

export interface Problem {
  type?: string
  title?: string
  status?: number
  detail?: string
  code?: string
  errors?: unknown[]
}

export class ApiError extends AppError {
  constructor(
    readonly status: number,
    readonly problem: Problem,
    request: string,
  ) {
    const code = (ERROR_CODES as readonly string[]).includes(problem.code ?? '')
      ? (problem.code as ErrorCode)
      : 'internal'
    const detail = problem.detail ?? problem.title ?? 'no detail'
    super(code, `${request} failed with ${status}: ${detail}`, problem)
  }
}

export type Query = Record<string, string | number | boolean | undefined>

export class ApiClient {
  readonly baseUrl: string

  constructor(
    baseUrl: string,
    readonly apiKey?: string,
    /** X-Project: the project an admin key spanning every project acts in. */
    readonly project?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      ...(this.project ? { 'x-project': this.project } : {}),
      ...extra,
    }
  }

  url(path: string, query: Query = {}): URL {
    const url = new URL(this.baseUrl + path)
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v))
    return url
  }

  /** WebSocket URL of a run's stream; the key also travels as a query parameter (browsers cannot set headers). */
  streamUrl(runId: string): URL {
    const url = this.url(`/v1/runs/${encodeURIComponent(runId)}/stream`)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    if (this.apiKey) url.searchParams.set('api_key', this.apiKey)
    return url
  }

  async fetch(method: string, path: string, init: { query?: Query; body?: unknown; text?: string } = {}) {
    const url = this.url(path, init.query)
    const request = `${method} ${url.pathname}`
    const hasJson = init.body !== undefined
    let response: Response
    try {
      response = await fetch(url, {
        method,
        headers: this.headers(
          hasJson
            ? { 'content-type': 'application/json' }
            : init.text !== undefined
              ? { 'content-type': 'application/x-ndjson' }
              : {},
        ),
        body: hasJson ? JSON.stringify(init.body) : init.text,
      })
    } catch (e) {
      // undici wraps the socket error; connection failures carry their errno code there.
      const inner = (e as { cause?: { code?: string; errors?: { code?: string }[]; message?: string } }).cause
      const cause = inner?.code ?? inner?.errors?.[0]?.code ?? inner?.message ?? (e as Error).message
      throw new AppError(
        'internal',
        `cannot reach the service at ${this.baseUrl} (${cause}); start it with 'sso serve' or pass --url / set SSO_URL`,
        { url: this.baseUrl },
        { cause: e },
      )
    }
    if (!response.ok) {
      const text = await response.text()
      let problem: Problem
      try {
        problem = JSON.parse(text) as Problem
      } catch {
        problem = { detail: text.slice(0, 500) || response.statusText }
      }
      throw new ApiError(response.status, problem, request)
    }
    return response
  }

  async json<T>(method: string, path: string, init: { query?: Query; body?: unknown; text?: string } = {}) {
    const response = await this.fetch(method, path, init)
    if (response.status === 204) return undefined as T
    return (await response.json()) as T
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.json<T>('GET', path, { query })
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, { body: body ?? {} })
  }
}
