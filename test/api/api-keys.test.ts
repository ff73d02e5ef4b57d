/** API keys through the API: scopes, and a revoke that takes effect on the very next request. */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { auth, buildTestApp } from '../helpers/build-app.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

after(stopEmbeddedServer)

for (const target of DATABASE_TARGETS) {
  describe(`API keys (${target})`, () => {
    test('a key revoked through the API gets 401 on its next request, cached reads included', async (tt) => {
      const t = await buildTestApp(tt, target)
      const created = await t.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: auth(t.keys.admin),
        payload: { name: 'dashboard', scopes: ['read'] },
      })
      assert.equal(created.statusCode, 201, created.body)
      const { id, key } = created.json()
      await t.app.hub.ready()
      const read = () => t.app.inject({ url: '/v1/runs?limit=5', headers: auth(key) })
      // Twice: the key lookup and the response are both cached now.
      assert.equal((await read()).statusCode, 200)
      assert.equal((await read()).statusCode, 200)
      const write = await t.app.inject({
        method: 'POST',
        url: '/v1/principle-sets',
        headers: auth(key),
        payload: { name: 'x', principles: [{ feature: 'f', good: 'g', bad: 'b' }] },
      })
      assert.equal(write.statusCode, 403, 'a read key cannot write')

      const revoked = await t.app.inject({
        method: 'DELETE',
        url: `/v1/api-keys/${id}`,
        headers: auth(t.keys.admin),
      })
      assert.equal(revoked.statusCode, 204)
      const refused = await read()
      assert.equal(refused.statusCode, 401)
      assert.equal(refused.json().code, 'unauthorized')
      const listed = (await t.app.inject({ url: '/v1/api-keys', headers: auth(t.keys.admin) })).json()
      assert.ok(listed.items.find((k: { id: string }) => k.id === id).revoked_at)
    })
  })
}
