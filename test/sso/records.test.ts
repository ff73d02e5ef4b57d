import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  parseJsonl,
  readDataset,
  SsoRecordSchema,
  validateDataset,
  writeJsonl,
} from '../../src/sso/records.ts'

const record = {
  instruction: 'What is 3+4?',
  p_system: 'Be accurate.',
  n_system: 'Be inaccurate.',
  chosen: '7',
  rejected: '9',
  raw: 'It is 7.',
  principles: ['accuracy'],
}

test('an SSO record line parses, with system defaulting to empty', () => {
  const { rows, errors } = parseJsonl(JSON.stringify(record), SsoRecordSchema)
  assert.deepEqual(errors, [])
  assert.equal(rows[0].system, '')
})

test('validation reports errors with 1-based line numbers and skips blank lines', () => {
  const text = [
    JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c' }),
    '',
    '{oops',
    '{"prompt":"x","chosen":1}',
  ].join('\n')
  const { rows, errors } = validateDataset('preference_pairs', text)
  assert.equal(rows.length, 1)
  assert.equal(errors[0].line, 3)
  assert.match(errors[0].message, /not valid JSON/)
  assert.equal(errors[1].line, 4)
  assert.match(errors[1].message, /chosen/)
})

test('sft pairs and queries formats', () => {
  assert.equal(validateDataset('sft_pairs', '{"prompt":"p","response":"r"}').errors.length, 0)
  assert.equal(validateDataset('queries', '{"prompt":""}').errors.length, 1)
})

test('writeJsonl round-trips and readDataset throws dataset_invalid naming the line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'records-'))
  try {
    const path = join(dir, 'r.jsonl')
    await writeJsonl(path, [record, record])
    assert.equal((await readFile(path, 'utf8')).split('\n').length, 3)
    assert.equal((await readDataset('sso_records', [path])).length, 2)
    const bad = join(dir, 'bad.jsonl')
    await writeFile(bad, `${JSON.stringify(record)}\n{"instruction":"x"}\n`)
    await assert.rejects(readDataset('sso_records', [bad]), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'dataset_invalid')
      assert.match(e.message, /line 2/)
      return true
    })
  } finally {
    await rm(dir, { recursive: true })
  }
})
