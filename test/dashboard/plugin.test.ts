/** The dashboard plugin on its own Fastify instance: pages and assets, and nothing else. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { dashboardPlugin } from '../../src/api/dashboard/plugin.ts'

async function build(t: { after(fn: () => Promise<void>): void }) {
  const app = Fastify()
  await app.register(dashboardPlugin)
  t.after(() => app.close())
  return app
}

test('GET / serves the page, which loads its assets from /assets/ and nothing from another host', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  assert.equal(res.statusCode, 200)
  assert.match(res.headers['content-type'] as string, /^text\/html/)
  assert.match(res.body, /<script type="module" src="assets\/app\.js"><\/script>/)
  assert.match(res.body, /data-testid="api-key"/)
  assert.doesNotMatch(res.body, /https?:\/\//, 'no external URL in the page')
})

/** Every module the page imports, found by following the imports from app.js. */
async function importedModules(app: FastifyInstance): Promise<string[]> {
  const seen = new Set<string>()
  const queue = ['app.js']
  while (queue.length > 0) {
    const name = queue.shift() as string
    if (seen.has(name)) continue
    seen.add(name)
    const res = await app.inject({ method: 'GET', url: `/assets/${name}` })
    assert.equal(res.statusCode, 200, `${name} is served`)
    for (const m of res.body.matchAll(/^import [^']*'\.\/([\w.-]+)'/gm)) queue.push(m[1])
  }
  return [...seen]
}

test('assets are served with their types, and their imports stay on the same origin', async (t) => {
  const app = await build(t)
  const modules = await importedModules(app)
  for (const view of ['runs.js', 'run-page.js', 'samples.js', 'datasets.js', 'principle-sets.js', 'dom.js'])
    assert.ok(modules.includes(view), `${view} is imported (modules: ${modules.join(', ')})`)
  const assets: [string, RegExp][] = [
    ...modules.map((name): [string, RegExp] => [name, /^text\/javascript/]),
    ['style.css', /^text\/css/],
  ]
  for (const [name, type] of assets) {
    const res = await app.inject({ method: 'GET', url: `/assets/${name}` })
    assert.equal(res.statusCode, 200, name)
    assert.match(res.headers['content-type'] as string, type, name)
    assert.doesNotMatch(
      res.body,
      /from ['"]https?:|import\(['"]https?:|url\(['"]?https?:/,
      `${name} loads nothing remote`,
    )
  }
})

test('unknown assets and path tricks are 404s', async (t) => {
  const app = await build(t)
  for (const url of [
    '/assets/nope.js',
    '/assets/..%2Fplugin.ts',
    '/assets/plugin.ts',
    '/assets/index.html',
  ]) {
    const res = await app.inject({ method: 'GET', url })
    assert.equal(res.statusCode, 404, url)
  }
})
