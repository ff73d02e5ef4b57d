/** `sso make-tiny-model` through the real binary: a folder the model layer loads without problems. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { inspectModelFolder, loadModel } from '../../src/model/index.ts'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))
const dirs: string[] = []

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

function sso(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('writes a loadable model and reports its size; the seed decides the weights', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'sso-tiny-'))
  dirs.push(root)
  const a = sso('make-tiny-model', path.join(root, 'a'), '--seed', '7', '--json')
  assert.equal(a.code, 0, a.stderr)
  const summary = JSON.parse(a.stdout) as { preset: string; seed: number; parameters: number; bytes: number }
  assert.equal(summary.preset, 'tiny')
  assert.equal(summary.seed, 7)
  assert.ok(summary.parameters > 100_000)
  assert.deepEqual(await inspectModelFolder(path.join(root, 'a')), [])
  const model = await loadModel(path.join(root, 'a'))
  assert.equal(model.config.hidden_size, 128)

  assert.equal(sso('make-tiny-model', path.join(root, 'b'), '--seed', '7').code, 0)
  assert.equal(sso('make-tiny-model', path.join(root, 'c'), '--seed', '8').code, 0)
  const weight = async (dir: string) =>
    (await loadModel(path.join(root, dir))).weights.get('model.embed_tokens.weight')!.data
  assert.deepEqual(await weight('b'), await weight('a'))
  assert.notDeepEqual(await weight('c'), await weight('a'))
})

test('an unknown preset or a missing folder is a usage error', () => {
  assert.equal(sso('make-tiny-model').code, 2)
  const r = sso('make-tiny-model', 'x', '--preset', 'huge')
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--preset must be one of tiny, 10m, 50m/)
})

test('a folder that cannot be written is one line naming the system error, without a stack', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'sso-tiny-'))
  dirs.push(root)
  await writeFile(path.join(root, 'a-file'), '')
  const r = sso('make-tiny-model', path.join(root, 'a-file', 'model'))
  assert.equal(r.code, 1)
  assert.match(r.stderr, /^sso make-tiny-model: E[A-Z]+: .*a-file/)
  assert.doesNotMatch(r.stderr, /unexpected failure|\n\s+at /)
})
