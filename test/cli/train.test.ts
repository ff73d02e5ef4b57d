/**
 * `sso train` and `sso eval` through the real binary on a seeded tiny model: a local run with JSON
 * output, Ctrl-C cancelling with a checkpoint, config errors, and a held-out evaluation report.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { makeTinyModel } from '../../src/model/index.ts'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))
let dir: string

interface Line {
  kind: string
  [key: string]: unknown
}

/** Runs the binary in its own process group (as a terminal would), so a group SIGINT reaches it. */
function sso(args: string[], onLine?: (line: Line, pid: number) => void) {
  return new Promise<{ code: number | null; lines: Line[]; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { detached: true })
      let stdout = ''
      let stderr = ''
      const lines: Line[] = []
      let consumed = 0
      child.stdout.on('data', (d) => {
        stdout += d
        const complete = stdout.split('\n').slice(0, -1)
        for (const text of complete.slice(consumed)) {
          let line: Line | undefined
          try {
            line = JSON.parse(text) as Line
          } catch {
            // not a JSON line: human output, or part of a pretty-printed document
          }
          if (line) {
            lines.push(line)
            onLine?.(line, child.pid!)
          }
        }
        consumed = complete.length
      })
      child.stderr.on('data', (d) => {
        stderr += d
      })
      child.on('error', reject)
      child.on('exit', (code) => resolve({ code, lines, stdout, stderr }))
    },
  )
}

async function writeConfig(name: string, hyperparameters: Record<string, unknown>) {
  const file = path.join(dir, `${name}.json`)
  await writeFile(
    file,
    JSON.stringify({
      method: 'sso',
      model: 'model',
      datasets: ['queries.jsonl'],
      hyperparameters: { max_new_tokens: 8, batch_size: 4, lr: 1e-3, ...hyperparameters },
      device: 'cpu',
      seed: 3,
      output_dir: `out-${name}`,
    }),
  )
  return file
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sso-train-'))
  await makeTinyModel(path.join(dir, 'model'), { seed: 1 })
  const prompts = [
    'What is 2 + 3?',
    'Say hello.',
    'Name a colour.',
    'What is 4 + 4?',
    'Describe a cat.',
    'Thank me.',
  ]
  await writeFile(
    path.join(dir, 'queries.jsonl'),
    prompts.map((p) => JSON.stringify({ prompt: p })).join('\n'),
  )
})

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('a local run reports metrics, samples and a checkpoint as JSON lines and writes its outputs', async () => {
  const r = await sso(['train', await writeConfig('ok', { iterations: 1 }), '--json'])
  assert.equal(r.code, 0, r.stderr)
  const kinds = new Set(r.lines.map((l) => l.kind))
  for (const k of ['metrics', 'event', 'samples', 'checkpoint', 'result'])
    assert.ok(kinds.has(k), `no ${k} line`)
  const metrics = r.lines.filter((l) => l.kind === 'metrics') as unknown as {
    step: number
    values: Record<string, number>
  }[]
  const losses = metrics.filter((m) => 'loss' in m.values).map((m) => m.values.loss)
  assert.ok(losses.length > 0 && losses.every(Number.isFinite), `losses: ${losses}`)
  const result = r.lines.at(-1) as Line & { status: string; finalStep: number }
  assert.equal(result.kind, 'result')
  assert.equal(result.status, 'succeeded')
  assert.equal(result.finalStep, metrics.at(-1)?.step)
  const out = path.join(dir, 'out-ok')
  assert.ok(existsSync(path.join(out, 'final', 'config.json')))
  assert.deepEqual(await readdir(path.join(out, 'samples')), ['iteration-1.jsonl'])
})

test('Ctrl-C cancels after the current step and keeps a checkpoint', async () => {
  let interrupted = false
  const r = await sso(['train', await writeConfig('cancel', { iterations: 20 }), '--json'], (line, pid) => {
    if (!interrupted && line.kind === 'metrics') {
      interrupted = true
      process.kill(-pid, 'SIGINT')
    }
  })
  assert.equal(r.code, 0, r.stderr)
  const result = r.lines.at(-1) as Line & { status: string; lastCheckpoint?: { dir: string } }
  assert.equal(result.status, 'cancelled')
  assert.ok(result.lastCheckpoint && existsSync(result.lastCheckpoint.dir), 'a checkpoint to resume from')
})

test('an invalid config lists its problems; a missing one is reported with its path', async () => {
  const bad = path.join(dir, 'bad.json')
  await writeFile(bad, JSON.stringify({ method: 'magic', datasets: [], output_dir: 'x' }))
  const r = await sso(['train', bad])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /invalid train config/)
  assert.match(r.stderr, /\/method/)
  assert.match(r.stderr, /must have required properties model/)
  assert.match(r.stderr, /\/datasets/)
  const missing = await sso(['train', path.join(dir, 'nope.json')])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /cannot read train config .*nope\.json/)
})

test('sso eval reports satisfaction per task family on held-out prompts', async () => {
  const r = await sso([
    'eval',
    path.join(dir, 'model'),
    '--per-family',
    '2',
    '--max-new-tokens',
    '6',
    '--json',
  ])
  assert.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as { n: number; satisfaction: number; byFamily: Record<string, number> }
  assert.equal(report.n, 10)
  assert.deepEqual(Object.keys(report.byFamily).sort(), [
    'arithmetic',
    'concision',
    'format',
    'politeness',
    'refusal',
  ])
  assert.ok(report.satisfaction >= 0 && report.satisfaction <= 1)
})
