/**
 * The real `sso` binary against the real service (in-process on an ephemeral port, real Postgres,
 * its in-process worker training the tiny model): datasets in and out, a run created, watched live
 * over the WebSocket stream and cancelled, and the service's refusals shown as failures.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TINY_MODEL_NAME } from '../../src/api/routes/v1/models.ts'
import { createDemoResources, DEMO_HYPERPARAMETERS, type DemoResources } from '../../src/cli/demo-setup.ts'
import { type LiveService, startLiveService } from './live-service.ts'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))

let service: LiveService
let dir: string
let resources: DemoResources

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the binary; `onStdout` sees output as it arrives (for `runs watch`). */
function sso(args: string[], onStdout?: (all: string) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, SSO_URL: service.url, SSO_API_KEY: service.apiKey },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      onStdout?.(stdout)
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

before(async () => {
  service = await startLiveService()
  dir = await mkdtemp(path.join(tmpdir(), 'sso-cli-'))
  resources = await createDemoResources(service.client)
})

after(async () => {
  await service?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('datasets: import validates on the service, export returns the same records', async () => {
  const file = path.join(dir, 'queries.jsonl')
  const lines = ['{"prompt":"What is 2 + 3?","task":"arithmetic"}', '{"prompt":"Say hello politely."}']
  await writeFile(file, `${lines.join('\n')}\n`)
  const imported = await sso(['datasets', 'import', file, '--format', 'queries', '--json'])
  assert.equal(imported.code, 0, imported.stderr)
  const dataset = JSON.parse(imported.stdout) as { id: string; line_count: number; name: string }
  assert.equal(dataset.line_count, 2)
  assert.equal(dataset.name, 'queries')

  const exported = await sso(['datasets', 'export', dataset.id])
  assert.equal(exported.code, 0, exported.stderr)
  assert.deepEqual(
    exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    lines.map((l) => JSON.parse(l)),
  )

  const bad = path.join(dir, 'bad.jsonl')
  await writeFile(bad, '{"prompt":"ok"}\n{"prompt":""}\n')
  const refused = await sso(['datasets', 'import', bad, '--format', 'queries'])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /line 2/)
})

test('runs: create, list, get, watch live while it trains, cancel', async () => {
  // Ids as the dashboard shows them: their first 8 characters.
  const created = await sso([
    'runs',
    'create',
    '--principle-set',
    resources.principleSetId.slice(0, 8),
    '--dataset',
    resources.datasetId.slice(0, 8),
    ...Object.entries({ ...DEMO_HYPERPARAMETERS, iterations: 50 }).map(
      ([k, v]) => `--set=${k}=${JSON.stringify(v)}`,
    ),
    '--metadata',
    'suite=cli',
    '--json',
  ])
  assert.equal(created.code, 0, created.stderr)
  const run = JSON.parse(created.stdout) as { id: string; status: string; metadata: Record<string, string> }
  assert.equal(run.status, 'queued')
  assert.deepEqual(run.metadata, { suite: 'cli' })

  const listed = await sso(['runs', 'list', '--json'])
  assert.equal(listed.code, 0, listed.stderr)
  assert.ok((JSON.parse(listed.stdout) as { items: { id: string }[] }).items.some((r) => r.id === run.id))

  const table = await sso(['runs', 'list'])
  assert.match(table.stdout, /^ID\s+METHOD\s+STATUS\s+STEP\s+MODEL\s+DATASETS/m)
  // Names, not ids: the built-in model's and the dataset's.
  const datasetName = (await service.client.get<{ name: string }>(`/v1/datasets/${resources.datasetId}`)).name
  assert.match(table.stdout, new RegExp(`^${run.id}\\s.*\\s${TINY_MODEL_NAME}\\s+${datasetName}\\s`, 'm'))

  // Watch as JSON lines; once a metrics frame has arrived, cancel from a second process.
  let cancel: Promise<Result> | undefined
  const watched = await sso(['runs', 'watch', run.id, '--json'], (out) => {
    if (!cancel && /"type":"metrics"/.test(out)) cancel = sso(['runs', 'cancel', run.id])
  })
  assert.equal(watched.code, 0, `${watched.stderr}${watched.stdout.slice(-600)}`)
  const cancelled = await cancel
  assert.equal(cancelled?.code, 0, cancelled?.stderr)

  const frames = watched.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; seq: number; step: number; data: Record<string, unknown> })
  const seqs = frames.map((f) => f.seq)
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'frames in seq order',
  )
  assert.equal(new Set(seqs).size, seqs.length, 'no frame twice')
  assert.ok(frames.some((f) => f.type === 'metrics' && typeof f.step === 'number'))
  assert.equal(frames.at(-1)?.type, 'status')
  assert.equal(frames.at(-1)?.data.status, 'cancelled')

  // Watching a finished run prints its final line at once.
  const rewatch = await sso(['runs', 'watch', run.id])
  assert.equal(rewatch.code, 0, rewatch.stderr)
  assert.match(rewatch.stdout, new RegExp(`run ${run.id} cancelled`))

  const got = await sso(['runs', 'get', run.id.slice(0, 8)])
  assert.equal(got.code, 0, got.stderr)
  assert.match(got.stdout, /^status\s+cancelled$/m)
})

test('workers list: the in-process worker, live, serving cpu', async () => {
  const listed = await sso(['workers', 'list', '--json'])
  assert.equal(listed.code, 0, listed.stderr)
  const { items } = JSON.parse(listed.stdout) as { items: { state: string; devices: string[] }[] }
  assert.equal(items.length, 1)
  assert.equal(items[0].state, 'live')
  assert.ok(items[0].devices.includes('cpu'))
  const table = await sso(['workers', 'list', '--all'])
  assert.equal(table.code, 0, table.stderr)
  assert.match(table.stdout, /^ID\s+STATE\s+DEVICES\s+RUNS/m)
  assert.match(table.stdout, /\blive\b/)
})

test('models: register a succeeded run by id, then train a run on it by name', async () => {
  const small = ['iterations=1', 'queries_per_iteration=4', 'max_new_tokens=4'].map((a) => `--set=${a}`)
  /** Creates a run and watches it to its end; returns its id. */
  const train = async (model: string[]) => {
    const created = await sso([
      'runs',
      'create',
      '--dataset',
      resources.datasetId,
      // The demo queries name their family's principle, which the demo set has and the default lacks.
      '--principle-set',
      resources.principleSetId,
      ...model,
      ...small,
      '--json',
    ])
    assert.equal(created.code, 0, created.stderr)
    const id = JSON.parse(created.stdout).id as string
    const watched = await sso(['runs', 'watch', id])
    assert.equal(watched.code, 0, watched.stderr)
    return id
  }
  const firstId = await train([])

  const registered = await sso(['models', 'register', 'cli-chained', '--run', firstId.slice(0, 8)])
  assert.equal(registered.code, 0, registered.stderr)
  assert.match(registered.stdout, new RegExp(`^registered model cli-chained .* at .*${firstId}/final$`, 'm'))
  const listed = await sso(['models', 'list'])
  assert.match(listed.stdout, /^\S+\s+cli-chained\s+local_hf\s/m)

  const run = await service.client.get<{ status: string; model_id: string }>(
    `/v1/runs/${await train(['--model', 'cli-chained'])}`,
  )
  assert.equal(run.status, 'succeeded')
  const models = await service.client.get<{ items: { id: string; name: string }[] }>('/v1/models')
  assert.equal(models.items.find((m) => m.id === run.model_id)?.name, 'cli-chained')

  const neither = await sso(['models', 'register', 'x'])
  assert.equal(neither.code, 2)
  assert.match(neither.stderr, /give --path or --run/)
})

test('id prefixes: one that matches several lists them, one that matches none says so', async () => {
  // 17 datasets: at least two share their first character.
  const ids: string[] = []
  for (let i = 0; i < 17; i++) {
    const d = await service.client.json<{ id: string }>('POST', '/v1/datasets', {
      query: { name: `prefix-${i}`, format: 'queries' },
      text: '{"prompt":"hi"}\n',
    })
    ids.push(d.id)
  }
  const first = [...ids.map((id) => id[0])].find((c, i, all) => all.indexOf(c) !== i)!
  const shared = ids.filter((id) => id.startsWith(first))
  const ambiguous = await sso(['datasets', 'export', first])
  assert.equal(ambiguous.code, 1)
  assert.match(ambiguous.stderr, new RegExp(`'${first}' matches \\d+ datasets: `))
  for (const id of shared) assert.match(ambiguous.stderr, new RegExp(`${id} \\(prefix-\\d+\\)`))

  const exported = await sso(['datasets', 'export', ids[0].slice(0, 13)])
  assert.equal(exported.code, 0, exported.stderr)
  assert.equal(exported.stdout, '{"prompt":"hi"}\n')

  // A name only one dataset has works as its id; a name none has is refused with that name.
  const named = path.join(dir, 'named.jsonl')
  await writeFile(named, '{"prompt":"by name"}\n')
  assert.equal(
    (await sso(['datasets', 'import', named, '--format', 'queries', '--name', 'one-of-a-kind'])).code,
    0,
  )
  const byName = await sso(['datasets', 'export', 'one-of-a-kind'])
  assert.equal(byName.code, 0, byName.stderr)
  assert.equal(byName.stdout, '{"prompt":"by name"}\n')
  const unnamed = await sso(['datasets', 'export', 'no-such-name'])
  assert.equal(unnamed.code, 1)
  assert.match(unnamed.stderr, /no dataset is named 'no-such-name'/)

  const none = await sso(['runs', 'get', 'ffffffff-ffff'])
  assert.equal(none.code, 1)
  assert.match(none.stderr, /no run id starts with 'ffffffff-ffff'/)
  const notAnId = await sso(['runs', 'cancel', 'my-run'])
  assert.equal(notAnId.code, 1)
  assert.match(notAnId.stderr, /'my-run' is not a run id or the start of one/)
})

test('models register --path: a refused folder names the models root', async () => {
  const r = await sso(['models', 'register', 'mine', '--path', 'no-such-model'])
  assert.equal(r.code, 1)
  assert.ok(/MODELS_ROOT[: ']/.test(r.stderr), r.stderr)
})

test('the service refusing is a failure with its detail: unknown run, wrong key', async () => {
  const missing = await sso(['runs', 'get', '00000000-0000-4000-8000-000000000000'])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /404/)

  const wrongKey = await sso(['runs', 'list', '--api-key', 'sso_not_a_key'])
  assert.equal(wrongKey.code, 1)
  assert.match(wrongKey.stderr, /401/)

  const badHp = await sso(['runs', 'create', '--set', 'beta=-1'])
  assert.equal(badHp.code, 1)
  assert.match(badHp.stderr, /400/)
  assert.match(badHp.stderr, /beta/)
})
