import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import type { PrismaClient } from '../db/client.ts'
import { createRepositories, type Repositories } from '../db/repositories.ts'
import { AppError } from '../errors.ts'
import type { PgBoss } from '../queue/boss.ts'
import type { Scheduling } from '../queue/run-lifecycle.ts'
import { ProblemSchema } from '../schemas/problem.ts'
import { dashboardPlugin } from './dashboard/plugin.ts'
import { apiKeyAuthPlugin, hashApiKey, presentedKey } from './plugins/app/api-key-auth.ts'
import { cachedReadsPlugin } from './plugins/app/cached-reads.ts'
import { declaredResponsesPlugin } from './plugins/app/declared-responses.ts'
import { clientErrorHandler, errorHandlerPlugin, frameworkErrors } from './plugins/app/error-handler.ts'
import { projectScopePlugin } from './plugins/app/project-scope.ts'
import { requestTextPlugin } from './plugins/app/request-text.ts'
import { healthRoutes } from './routes/health.ts'
import { prometheusRoutes } from './routes/prometheus.ts'
import { apiKeysRoutes } from './routes/v1/api-keys.ts'
import { datasetsRoutes } from './routes/v1/datasets.ts'
import { modelsRoutes } from './routes/v1/models.ts'
import { principleSetsRoutes } from './routes/v1/principle-sets.ts'
import { projectsRoutes } from './routes/v1/projects.ts'
import { runActionsRoutes } from './routes/v1/runs/actions.ts'
import { runsRoutes } from './routes/v1/runs/index.ts'
import { runResultsRoutes } from './routes/v1/runs/results.ts'
import { runStreamRoutes } from './routes/v1/runs/stream.ts'
import { workersRoutes } from './routes/v1/workers.ts'
import { StreamKeyWatch } from './stream/key-watch.ts'
import { RunFramesHub } from './stream/run-frames-hub.ts'
import { DEFAULT_STREAM_LIMITS, type StreamLimits, type StreamStats } from './stream/run-subscription.ts'
import { buildValidators } from './validators.ts'

export interface AppOptions {
  config: Config
  prisma: PrismaClient
  databaseUrl: string
  boss: PgBoss
  logger: FastifyBaseLogger | boolean
  streamLimits?: Partial<StreamLimits>
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    prisma: PrismaClient
    repos: Repositories
    boss: PgBoss
    scheduling: Scheduling
    hub: RunFramesHub
    streamLimits: StreamLimits
    streamStats: StreamStats
    streamKeys: StreamKeyWatch
  }
}

/** Paths served without an API key: health, API docs and the dashboard's static files. */
const PUBLIC_PATHS = /^\/(healthz|readyz|docs(\/.*)?|assets\/[^/]+)?$/

export type App = FastifyInstance

/** Builds the API: external plugins, then app plugins, then routes. No process-level concerns here. */
export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    loggerInstance: typeof opts.logger === 'object' ? opts.logger : undefined,
    logger: typeof opts.logger === 'boolean' ? opts.logger : undefined,
    // JSON requests are small; dataset uploads raise the limit to BODY_LIMIT_BYTES on their route.
    bodyLimit: Math.min(1 << 20, opts.config.BODY_LIMIT_BYTES),
    requestIdHeader: 'x-request-id',
    frameworkErrors,
    clientErrorHandler,
    schemaController: { compilersFactory: { buildValidator: buildValidators() } },
    ajv: {
      customOptions: {
        // Unknown fields must be refused with a clear error, not stripped: request schemas say
        // additionalProperties: false and ajv keeps them so that validation fails.
        removeAdditional: false,
        useDefaults: true,
        coerceTypes: 'array',
        allErrors: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  const repos = createRepositories(opts.prisma)
  const hub = new RunFramesHub(opts.databaseUrl, app.log)
  app.decorate('config', opts.config)
  app.decorate('prisma', opts.prisma)
  app.decorate('repos', repos)
  app.decorate('boss', opts.boss)
  app.decorate('scheduling', {
    prisma: opts.prisma,
    boss: opts.boss,
    webhooks: opts.config.WEBHOOK_URL !== undefined,
  })
  app.decorate('hub', hub)
  app.decorate('streamLimits', { ...DEFAULT_STREAM_LIMITS, ...opts.streamLimits })
  app.decorate('streamStats', { droppedFrames: 0, resyncs: 0 })
  const streamKeys = new StreamKeyWatch((key) => app.authenticate(key), app.log)
  app.decorate('streamKeys', streamKeys)
  app.addHook('onClose', async () => {
    streamKeys.stop()
    await hub.close()
  })

  // external
  await app.register(swagger, {
    // Shared schemas keep their $id (Problem) as their component name.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sso-trainer API',
        version: '1.0.0',
        description:
          'Training runs for Self-Steering Optimization: principle sets, models, datasets, runs, live metrics.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key' },
          project: {
            type: 'apiKey',
            in: 'header',
            name: 'x-project',
            description:
              'Optional, for admin keys that span every project: the project (id or name) to act in. ' +
              'Without it such a key sees every project and creates resources in `default`.',
          },
        },
      },
      security: [{ bearer: [] }, { apiKeyHeader: [] }],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })
  await app.register(rateLimit, {
    max: opts.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: '1 minute',
    keyGenerator: (request) => {
      const key = presentedKey(request)
      return key ? `key:${hashApiKey(key)}` : `ip:${request.ip}`
    },
    allowList: (request) => PUBLIC_PATHS.test(request.url.split('?')[0]),
    errorResponseBuilder: (_request, context) => {
      const error = new AppError(
        'rate_limited',
        `rate limit of ${context.max} requests per ${context.after} exceeded`,
      )
      return Object.assign(error, { statusCode: 429 })
    },
  })

  // app
  app.addSchema(ProblemSchema)
  await app.register(errorHandlerPlugin)
  await app.register(declaredResponsesPlugin)
  await app.register(apiKeyAuthPlugin, {
    apiKeys: repos.apiKeys,
    publicPaths: PUBLIC_PATHS,
    failuresPerMinute: opts.config.AUTH_FAILURES_PER_MINUTE,
  })
  await app.register(projectScopePlugin, { projects: repos.projects })
  await app.register(cachedReadsPlugin)
  await app.register(requestTextPlugin)

  // routes
  await app.register(healthRoutes)
  await app.register(prometheusRoutes)
  await app.register(dashboardPlugin)
  await app.register(
    async (v1) => {
      await v1.register(apiKeysRoutes)
      await v1.register(projectsRoutes)
      await v1.register(principleSetsRoutes)
      await v1.register(modelsRoutes)
      await v1.register(datasetsRoutes)
      await v1.register(runsRoutes)
      await v1.register(runActionsRoutes)
      await v1.register(runResultsRoutes)
      await v1.register(runStreamRoutes)
      await v1.register(workersRoutes)
    },
    { prefix: '/v1' },
  )
  return app
}
