/** The dashboard plugin on its own Fastify instance: pages and assets, and nothing else. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
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

test('assets are served with their types, and their imports stay on the same origin', async (t) => {
  const app = await build(t)
  for (const [name, type] of [
    ['app.js', /^text\/javascript/],
    ['api.js', /^text\/javascript/],
    ['chart.js', /^text\/javascript/],
    ['style.css', /^text\/css/],
  ] as const) {
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
