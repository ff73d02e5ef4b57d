/**
 * A run's failure is recorded even when its message holds text Postgres cannot store: a user's
 * chat template that raises an error with a NUL in it ended the run, and then the failure record was
 * refused and retried for ever while the run read `running`.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, test } from 'node:test'
import { makeTinyModel } from '../../src/model/index.ts'
import { auth, buildTestApp, startTestWorker } from '../helpers/build-app.ts'
import { uploadDataset } from '../helpers/datasets.ts'
import { DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'
import { until } from './until.ts'

after(stopEmbeddedServer)

test('a failure message with a NUL ends the run failed, the NUL stored as U+FFFD', {
  timeout: 180_000,
}, async (ctx) => {
  const t = await buildTestApp(ctx, DATABASE_TARGETS[0], { env: { EXECUTION_PROVIDER: 'cpu' } })
  const dir = path.join(t.modelsRoot, 'raising-template')
  await makeTinyModel(dir, { seed: 1 })
  const tokenizerConfig = path.join(dir, 'tokenizer_config.json')
  const config = JSON.parse(await readFile(tokenizerConfig, 'utf8'))
  config.chat_template = '{{ raise_exception("no chat here\\u0000, sorry") }}'
  await writeFile(tokenizerConfig, JSON.stringify(config))
  const send = async (url: string, payload: object) => {
    const res = await t.app.inject({ method: 'POST', url, headers: auth(t.keys.admin), payload })
    assert.equal(res.statusCode, 201, res.body)
    return res.json().id as string
  }
  const modelId = await send('/v1/models', { name: 'raising-template', path: 'raising-template' })
  const runId = await send('/v1/runs', {
    method: 'sso',
    model_id: modelId,
    dataset_ids: [await uploadDataset(t, 'queries')],
    hyperparameters: { iterations: 1, max_new_tokens: 4 },
  })
  await startTestWorker(t)
  const get = async (url: string) => (await t.app.inject({ url, headers: auth(t.keys.read) })).json()
  const run = await until(
    async () => {
      const r = await get(`/v1/runs/${runId}`)
      return r.status === 'failed' || r.status === 'succeeded' ? r : undefined
    },
    'the run to end',
    120_000,
  )
  assert.equal(run.status, 'failed')
  assert.match(run.error.message, /no chat here\uFFFD, sorry/)
  const events = await get(`/v1/runs/${runId}/events?type=status`)
  assert.equal(events.items.at(-1).data.status, 'failed', JSON.stringify(events))
})
