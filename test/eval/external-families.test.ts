import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadExternalFamilies } from '../../src/eval/external-families.ts'
import { evaluate } from '../../src/eval/run-eval.ts'
import type { TextGenerator } from '../../src/sso/policy-port.ts'

const FIXTURE = join(import.meta.dirname, 'fixtures', 'families')
const sampling = { maxNewTokens: 8, temperature: 0, topP: 1, topK: 0, seed: 0 }

test('an example family loads from a folder and evaluates through its own checker', async () => {
  const [family, ...rest] = await loadExternalFamilies(FIXTURE)
  assert.equal(rest.length, 0)
  assert.equal(family.name, 'endswithperiod')
  assert.equal(family.items.validation.length, 2)
  assert.equal(family.items.test.length, 3)
  // one sentence for tomatoes and velvet, two for the others
  const policy: TextGenerator = {
    generate: async (prompts) =>
      prompts.map((p) => (/tomato|velvet/.test(p.user) ? 'It is deep.' : 'It is. Really')),
  }
  const report = await evaluate(policy, [family], family.items.test, sampling)
  assert.deepEqual(report.byFamily, { endswithperiod: 1 / 3 })
})

test('a broken family folder is refused with the reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'families-'))
  try {
    await mkdir(join(dir, 'bad'))
    await assert.rejects(loadExternalFamilies(dir), /has no checker\.ts/)
    await writeFile(join(dir, 'bad', 'checker.mjs'), 'export const check = () => 2\n')
    await writeFile(join(dir, 'bad', 'prompts.jsonl'), '{"prompt": "Hi", "split": "train"}\n')
    await assert.rejects(loadExternalFamilies(dir), /line 1: 'split' must be 'validation' or 'test'/)
    await writeFile(join(dir, 'bad', 'prompts.jsonl'), '{"prompt": "Hi", "split": "test"}\n')
    const [bad] = await loadExternalFamilies(dir)
    assert.throws(() => bad.check('Hi', 'x'), /returned 2, not a number in \[0, 1\]/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
