/** The real `sso` binary: help, usage errors (exit 2) and failures (exit 1) need no service. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))

/** A loopback port nobody listens on (bound, then released): service calls fail with ECONNREFUSED. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

let deadUrl: string
let otherDeadUrl: string
before(async () => {
  deadUrl = `http://127.0.0.1:${await closedPort()}`
  otherDeadUrl = `http://127.0.0.1:${await closedPort()}`
})

function sso(...args: string[]) {
  const env = { ...process.env, SSO_URL: deadUrl, SSO_API_KEY: '' }
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('sso --help lists every command group; sso alone is a usage error', () => {
  const help = sso('--help')
  assert.equal(help.code, 0)
  for (const c of ['runs create', 'runs watch', 'datasets import', 'bench'])
    assert.match(help.stdout, new RegExp(c))
  assert.equal(sso().code, 2)
})

test('each command has --help with its options', () => {
  const r = sso('runs', 'create', '--help')
  assert.equal(r.code, 0)
  assert.match(r.stdout, /Usage: sso runs create \[options\]/)
  assert.match(r.stdout, /--set <key=value>/)
  assert.match(r.stdout, /env SSO_API_KEY/)
  assert.equal(sso('help', 'runs', 'watch').code, 0)
})

test('usage errors exit with 2 and say what was wrong', () => {
  const unknownCommand = sso('runz')
  assert.equal(unknownCommand.code, 2)
  assert.match(unknownCommand.stderr, /unknown command 'runz'/)

  const unknownOption = sso('runs', 'list', '--bogus')
  assert.equal(unknownOption.code, 2)
  assert.match(unknownOption.stderr, /Unknown option '--bogus'/)
  assert.match(unknownOption.stderr, /sso runs list --help/)

  const missing = sso('runs', 'get')
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /missing <run-id>/)

  const badPair = sso('runs', 'create', '--set', 'lr')
  assert.equal(badPair.code, 2)
  assert.match(badPair.stderr, /--set expects key=value, got 'lr'/)

  const badFormat = sso('datasets', 'import', 'x.jsonl', '--format', 'csv')
  assert.equal(badFormat.code, 2)
  assert.match(badFormat.stderr, /--format must be one of sso_records, preference_pairs, sft_pairs, queries/)

  const badUrl = sso('runs', 'list', '--url', 'localhost:3000')
  assert.equal(badUrl.code, 2)
  assert.match(badUrl.stderr, /--url must be an http:\/\/ or https:\/\/ URL, got 'localhost:3000'/)
  assert.doesNotMatch(badUrl.stderr, /unexpected failure|\n\s+at /)
})

test('an unreachable service is a failure (exit 1) that names the URL and the way out', () => {
  const r = sso('runs', 'list')
  assert.equal(r.code, 1)
  assert.ok(r.stderr.includes(`cannot reach the service at ${deadUrl} (ECONNREFUSED)`), r.stderr)
  assert.match(r.stderr, /--url|SSO_URL/)
})

test('--url on the command line wins over SSO_URL', () => {
  const r = sso('runs', 'list', '--url', otherDeadUrl)
  assert.equal(r.code, 1)
  assert.ok(r.stderr.includes(otherDeadUrl), r.stderr)
})

test('sso bench lists the runnable benchmarks, not their shared helpers', () => {
  const list = sso('bench', '--list')
  assert.equal(list.code, 0, list.stderr)
  const names = list.stdout.trim().split('\n')
  assert.ok(names.includes('engine'), list.stdout)
  assert.ok(!names.includes('models') && !names.includes('service-process'), list.stdout)
  const unknown = sso('bench', 'nope')
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /unknown benchmark nope; available: .*engine/)
})
