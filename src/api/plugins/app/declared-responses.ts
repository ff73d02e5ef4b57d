import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'

/** A problem response as served: `application/problem+json`, whatever else the route produces. */
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
})

const isProblemRef = (schema: unknown) =>
  typeof schema === 'object' && schema !== null && (schema as { $ref?: string }).$ref === 'Problem#'

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * The error statuses every operation can answer besides its own, added to each route's response
 * schema so that openapi.yaml declares them: a malformed query (every route reads one), a missing
 * or weak key, the rate limit, an unknown or over-long id, a change that raced another request's
 * (src/api/plugins/app/error-handler.ts), and a body too large or of a type or charset the route
 * does not read. A route's own entry for a status is kept; its problem entries
 * get the served content type.
 */
function commonResponses(route: RouteOptions): Record<number, object> {
  const schema = route.schema ?? {}
  const methods = [route.method].flat()
  const common: Record<number, object> = {
    400: problem('Bad Request: a parameter or the body is not valid'),
  }
  if (route.config?.scope !== 'public') {
    common[401] = problem('Unauthorized: no API key, or one that is unknown or revoked')
    common[403] = problem('Forbidden: the API key lacks the scope this operation needs')
    common[429] = problem('Too Many Requests: rate limit, or too many wrong API keys from this address')
  }
  if (schema.params) {
    common[404] = problem('Not Found')
    common[414] = problem('URI Too Long: a path segment is longer than 100 characters')
  }
  if (methods.some((m) => BODY_METHODS.has(m))) {
    common[409] = problem('Conflict: a concurrent request changed a resource this operation uses')
    common[413] = problem('Content Too Large')
    common[415] = problem('Unsupported Media Type: a content type or charset the operation does not read')
  }
  return common
}

export const declaredResponsesPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRoute', (route) => {
      if (!route.schema || route.schema.hide) return
      const own = Object.entries((route.schema.response ?? {}) as Record<string, unknown>).map(
        ([status, schema]) => [
          status,
          isProblemRef(schema) ? problem(STATUS_CODES[status] ?? 'Error') : schema,
        ],
      )
      route.schema = {
        ...route.schema,
        response: { ...commonResponses(route), ...Object.fromEntries(own) },
      }
    })
  },
  { name: 'declared-responses' },
)
