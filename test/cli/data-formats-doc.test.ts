/** docs/data-formats.md stays true: a section per dataset format, and its example lines validate. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { DATASET_FORMATS, type DatasetFormat, validateDataset } from '../../src/sso/records.ts'

const doc = readFileSync(new URL('../../docs/data-formats.md', import.meta.url), 'utf8')

test('every format has a section whose example lines are valid records of it', () => {
  for (const format of Object.keys(DATASET_FORMATS) as DatasetFormat[]) {
    const section = doc.split(`\n## \`${format}\`\n`)[1]?.split('\n## ')[0]
    assert.ok(section, `no section for ${format}`)
    const example = section.match(/```jsonl\n([\s\S]*?)```/)?.[1]
    assert.ok(example, `no example for ${format}`)
    const parsed = validateDataset(format, example)
    assert.deepEqual(parsed.errors, [], format)
    assert.ok(parsed.rows.length >= 2, format)
  }
})
