import type { FastifyPluginAsync } from 'fastify'
import Type from 'typebox'
import { AppError } from '../../errors.ts'

const HealthSchema = Type.Object({ status: Type.Literal('ok') })

/** Liveness (the process answers) and readiness (Postgres and the queue answer). No key needed. */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/healthz',
    { config: { scope: 'public' }, schema: { tags: ['health'], response: { 200: HealthSchema } } },
    async () => ({ status: 'ok' as const }),
  )
  app.get(
    '/readyz',
    {
      config: { scope: 'public' },
      schema: { tags: ['health'], response: { 200: HealthSchema, 503: { $ref: 'Problem#' } } },
    },
    async () => {
      try {
        await app.prisma.$queryRaw`SELECT 1`
      } catch (e) {
        throw new AppError('provider_unavailable', 'the database does not answer', undefined, { cause: e })
      }
      return { status: 'ok' as const }
    },
  )
}
