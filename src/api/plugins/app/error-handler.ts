import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Prisma } from '../../../db/client.ts'
import { AppError, type ErrorCode } from '../../../errors.ts'
import type { Problem } from '../../../schemas/problem.ts'

/** The one place an error code becomes an HTTP status. */
export const HTTP_STATUS: { [C in ErrorCode]: number } = {
  validation_failed: 400,
  not_found: 404,
  conflict: 409,
  invalid_state: 409,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  header_too_large: 431,
  model_load_failed: 422,
  dataset_invalid: 422,
  shape_mismatch: 422,
  graph_invalid: 422,
  grad_failed: 500,
  provider_unavailable: 503,
  training_failed: 500,
  internal: 500,
}

const TITLES: Partial<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** The code of a framework error (body parser, router) that has only a status. */
const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
  404: 'not_found',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'header_too_large',
}

type ProblemError = Problem['errors']

function problem(
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  errors?: ProblemError,
): Problem {
  return {
    type: `urn:sso-trainer:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    instance: String(request.id),
    ...(errors && errors.length > 0 ? { errors } : {}),
  }
}

/** Line-numbered or path-tagged problems an AppError may carry in `details`. */
function detailErrors(details: unknown): ProblemError {
  if (!details || typeof details !== 'object') return undefined
  const d = details as { errors?: { line: number; message: string }[]; problems?: string[] }
  if (Array.isArray(d.errors))
    return d.errors.map((e) => ({ path: `line ${e.line}`, line: e.line, message: e.message }))
  if (Array.isArray(d.problems)) return d.problems.map((p) => ({ path: p.split(' ')[0], message: p }))
  return undefined
}

/**
 * Constraint errors that only a concurrent request can cause once a handler's own checks passed: the
 * unique value it checked was taken, a row it links to was deleted (or linked to), or the row it
 * changes was deleted, in between.
 * Routes that expect one say so in their own words; these are the answers for the others.
 */
function raceProblem(e: Prisma.PrismaClientKnownRequestError, request: FastifyRequest): Problem | undefined {
  const model = String(e.meta?.modelName ?? 'resource')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
  if (e.code === 'P2002')
    return problem(
      request,
      409,
      'conflict',
      `a concurrent request created a ${model} with the same unique value`,
    )
  if (e.code === 'P2003')
    return problem(
      request,
      409,
      'conflict',
      `a concurrent request changed what this ${model} is linked to; retry`,
    )
  if (e.code === 'P2025')
    return problem(request, 404, 'not_found', `a concurrent request deleted the ${model}`)
  return undefined
}

export function toProblem(error: FastifyError | Error, request: FastifyRequest): Problem {
  const race = error instanceof Prisma.PrismaClientKnownRequestError && raceProblem(error, request)
  if (race) return race
  if (error instanceof AppError) {
    const status = HTTP_STATUS[error.code]
    const detail = status >= 500 ? 'the server failed to handle the request' : error.message
    return problem(
      request,
      status,
      error.code,
      detail,
      status >= 500 ? undefined : detailErrors(error.details),
    )
  }
  const e = error as FastifyError
  if (e.validation) {
    const errors = e.validation.map((v) => ({
      path: `${e.validationContext ?? 'body'}${v.instancePath || ''}`,
      message:
        v.keyword === 'additionalProperties'
          ? `unknown field '${(v.params as { additionalProperty?: string }).additionalProperty}'`
          : (v.message ?? 'is invalid'),
    }))
    const detail = errors.map((x) => `${x.path}: ${x.message}`).join('; ')
    return problem(request, 400, 'validation_failed', detail, errors)
  }
  const status = e.statusCode ?? 500
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'validation_failed'
    const detail =
      e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError
        ? `malformed JSON body: ${e.message}`
        : e.message
    return problem(request, status, code, detail)
  }
  return problem(request, 500, 'internal', 'the server failed to handle the request')
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type('application/problem+json').send(body)
}

/**
 * Router errors Fastify answers before any route runs (Fastify's `frameworkErrors`). Their messages
 * quote the URL, which may hold a key, so the detail is ours.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const body =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? problem(request, 414, 'uri_too_long', 'a path segment is longer than 100 characters')
      : error.code === 'FST_ERR_BAD_URL'
        ? problem(request, 400, 'validation_failed', 'the URL is malformed')
        : problem(request, 500, 'internal', 'the server failed to handle the request')
  return sendProblem(reply, body)
}

/**
 * Requests Node's HTTP parser refuses (headers or URL too large, malformed requests) never reach
 * Fastify: their problem is written to the socket (Fastify's `clientErrorHandler`).
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'header_too_large', 'the request line and headers exceed the server limit (16 KiB)']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'validation_failed', 'the request was not received in time']
        : [400, 'validation_failed', 'the request is not valid HTTP']
  const body = JSON.stringify({
    type: `urn:sso-trainer:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    instance: 'none',
  })
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/problem+json\r\nConnection: close\r\n\r\n${body}`,
    )
  socket.destroy(error)
}

/** Every error leaves as application/problem+json; 5xx details are logged, not returned. */
export const errorHandlerPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const body = toProblem(error, request)
      if (body.status >= 500) request.log.error({ err: error }, 'request failed')
      else request.log.info({ code: body.code, detail: body.detail }, 'request refused')
      return sendProblem(reply, body)
    })
    app.setNotFoundHandler((request, reply) =>
      sendProblem(
        reply,
        problem(request, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
      ),
    )
  },
  { name: 'error-handler' },
)
