/** The datasets page's format help covers every dataset format, and each example line is valid. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
// @ts-expect-error the dashboard's browser modules are plain JavaScript without declarations
import { FORMAT_EXAMPLES } from '../../src/api/dashboard/datasets.js'
import { DATASET_FORMATS, type DatasetFormat, validateDataset } from '../../src/sso/records.ts'

test('one valid example line per dataset format', { timeout: 10_000 }, () => {
  const examples = FORMAT_EXAMPLES as Record<string, { use: string; example: unknown }>
  assert.deepEqual(Object.keys(examples).sort(), Object.keys(DATASET_FORMATS).sort())
  for (const [format, { example }] of Object.entries(examples)) {
    const parsed = validateDataset(format as DatasetFormat, JSON.stringify(example))
    assert.deepEqual(parsed.errors, [], format)
    assert.equal(parsed.rows.length, 1, format)
  }
})
