import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { OPENAPI_FILE, renderOpenApi } from '../../scripts/generate-openapi.ts'

test('openapi.yaml matches the routes and schemas (run scripts/generate-openapi.ts after changing them)', async () => {
  const committed = await readFile(OPENAPI_FILE, 'utf8')
  const rendered = await renderOpenApi()
  assert.ok(rendered.includes('/v1/runs/{id}/stream:'))
  assert.equal(committed, rendered, 'openapi.yaml is out of date')
})
