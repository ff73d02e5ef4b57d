/**
 * Serves the dashboard: index.html at `/` and its committed ES modules and stylesheet under
 * `/assets/`. No build step; the files are read once at registration and served from memory. The pages
 * hold no data (everything comes from /v1 with the user's key), so they need no API key themselves.
 */
import { readFile } from 'node:fs/promises'
import type {} from '@fastify/swagger' // `schema.hide` keeps these routes out of openapi.yaml
import type { FastifyPluginAsync } from 'fastify'

const DIR = new URL('./', import.meta.url)

const JS = 'text/javascript; charset=utf-8'

/** Every file the page loads: the entry, one module per view, the shared helpers and the styles. */
const ASSETS = {
  'app.js': JS,
  'api.js': JS,
  'chart.js': JS,
  'compare.js': JS,
  'datasets.js': JS,
  'dom.js': JS,
  'events.js': JS,
  'models.js': JS,
  'new-run-form.js': JS,
  'page.js': JS,
  'principle-sets.js': JS,
  'run-charts.js': JS,
  'run-page.js': JS,
  'runs.js': JS,
  'samples.js': JS,
  'style.css': 'text/css; charset=utf-8',
} as const

type AssetName = keyof typeof ASSETS

export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  const index = await readFile(new URL('index.html', DIR))
  const assets = new Map<string, Buffer>()
  for (const name of Object.keys(ASSETS)) assets.set(name, await readFile(new URL(name, DIR)))

  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index)
  })

  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { schema: { hide: true } },
    async (request, reply) => {
      const body = assets.get(request.params.name)
      if (!body) return reply.callNotFound()
      return reply
        .type(ASSETS[request.params.name as AssetName])
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .send(body)
    },
  )
}

export default dashboardPlugin
