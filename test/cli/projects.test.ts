/**
 * The real `sso` binary against the real service: the project a key acts in (`sso whoami`),
 * projects created and listed, and a key issued for a project that then sees only that project.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type LiveService, startLiveService } from './live-service.ts'

const BIN = fileURLToPath(new URL('../../bin/sso.js', import.meta.url))
const run = promisify(execFile)

let service: LiveService

/** Runs the binary with `key`; resolves with stdout, or rejects with the exit code and stderr. */
async function sso(key: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [BIN, ...args], {
    env: { ...process.env, SSO_URL: service.url, SSO_API_KEY: key, SSO_PROJECT: '', ...env },
  })
  return stdout
}

before(async () => {
  service = await startLiveService()
})
after(async () => {
  await service?.stop()
})

describe('sso projects', { timeout: 120_000 }, () => {
  test('whoami, projects create/list and keys create --project', async () => {
    const admin = service.apiKey
    assert.match(await sso(admin, ['whoami']), /every project/)
    assert.match(await sso(admin, ['projects', 'create', 'team-a']), /created project team-a/)
    const key = (
      await sso(admin, ['keys', 'create', '--name', 'ci', '--scopes', 'write', '--project', 'team-a'])
    ).trim()
    assert.match(key, /^sso_/)

    assert.match(await sso(key, ['whoami']), /^key ci .*scopes write\)\nproject team-a \(/)
    const own = JSON.parse(await sso(key, ['projects', 'list', '--json'])).items
    assert.deepEqual(
      own.map((p: { name: string }) => p.name),
      ['team-a'],
    )
    const all = JSON.parse(await sso(admin, ['projects', 'list', '--json'])).items
    assert.deepEqual(all.map((p: { name: string }) => p.name).sort(), ['default', 'team-a'])
    // An all-projects admin key narrowed by SSO_PROJECT acts in that project only.
    assert.match(await sso(admin, ['whoami'], { SSO_PROJECT: 'team-a' }), /project team-a/)
    // A project key cannot create projects: the service's refusal is the command's failure.
    await assert.rejects(
      sso(key, ['projects', 'create', 'team-b']),
      (e: { code: number; stderr: string }) => {
        assert.notEqual(e.code, 0)
        assert.match(e.stderr, /403|admin|scope/)
        return true
      },
    )
  })
})
