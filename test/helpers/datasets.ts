/**
 * Small valid datasets uploaded through POST /v1/datasets, so tests create runs the way clients do
 * (a run must name data its method reads).
 */
import assert from 'node:assert/strict'
import type { DatasetFormat } from '../../src/sso/records.ts'
import { auth, type TestApp } from './build-app.ts'

export const SAMPLE_ROWS: Record<DatasetFormat, object[]> = {
  queries: [{ prompt: 'Say hi.' }, { prompt: 'Name a tree.' }],
  preference_pairs: [{ prompt: 'Say hi.', chosen: 'Hi!', rejected: 'No.' }],
  sft_pairs: [{ prompt: 'Say hi.', response: 'Hi!' }],
  sso_records: [
    {
      instruction: 'Say hi.',
      system: '',
      p_system: 'Be friendly.',
      n_system: 'Be rude.',
      chosen: 'Hi!',
      rejected: 'No.',
      raw: 'Hi!',
    },
  ],
}

/** Uploads `rows` (a few sample rows of the format by default) and returns the new dataset's id. */
export async function uploadDataset(
  t: Pick<TestApp, 'app' | 'keys'>,
  format: DatasetFormat = 'queries',
  rows: readonly object[] = SAMPLE_ROWS[format],
): Promise<string> {
  const res = await t.app.inject({
    method: 'POST',
    url: `/v1/datasets?name=${format}&format=${format}`,
    headers: { ...auth(t.keys.write), 'content-type': 'application/x-ndjson' },
    payload: rows.map((r) => JSON.stringify(r)).join('\n'),
  })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().id
}

/** Uploads one query per prompt. */
export const uploadQueries = (t: Pick<TestApp, 'app' | 'keys'>, prompts: readonly string[]) =>
  uploadDataset(
    t,
    'queries',
    prompts.map((prompt) => ({ prompt })),
  )

/**
 * POST /v1/runs for an sso run on the built-in tiny model over the sample queries; `fields` add to
 * or replace the body (dataset_ids included). Returns the inject response.
 */
export async function createTinyRun(t: TestApp, fields: Record<string, unknown> = {}) {
  const tiny = await t.repos.models.findByName('tiny')
  assert.ok(tiny, 'the built-in tiny model is registered')
  const datasetIds = fields.dataset_ids ?? [await uploadDataset(t, 'queries')]
  return t.app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: auth(t.keys.write),
    payload: { method: 'sso', model_id: tiny.id, ...fields, dataset_ids: datasetIds },
  })
}
