import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type Provider, providerStatuses } from '../../src/engine/runtime/index.ts'
import { skipUnlessCi } from './ci.ts'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Marks a test process started by `rerunWithSoftwareVulkan` (prevents a second re-run). */
const CHILD_MARK = 'SSO_TEST_SOFTWARE_VULKAN_CHILD'

/**
 * The environment that points the Vulkan loader at the Mesa lavapipe build unpacked by
 * `.ci/install-debian-deps`, or undefined when that script has not run (or SSO_VULKAN_ENV names no file).
 */
export function softwareVulkanEnv(): Record<string, string> | undefined {
  const file = process.env.SSO_VULKAN_ENV ?? path.join(REPO, '.cache', 'vulkan', 'vulkan.env')
  if (!existsSync(file)) return undefined
  const env: Record<string, string> = {}
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/)
    if (m) env[m[1]] = m[2]
  }
  if (env.LD_LIBRARY_PATH && process.env.LD_LIBRARY_PATH) {
    env.LD_LIBRARY_PATH = `${env.LD_LIBRARY_PATH}:${process.env.LD_LIBRARY_PATH}`
  }
  return env
}

export function isSoftwareVulkanChild(): boolean {
  return process.env[CHILD_MARK] === '1'
}

/**
 * The Vulkan loader reads its library path when the process starts, so a test file that needs the
 * software driver runs again in a child process with that environment. Returns its exit status
 * and output; the child's tests are the real assertions.
 */
export function rerunWithSoftwareVulkan(
  testFile: string,
  env: Record<string, string>,
): { status: number; output: string; passed: number } {
  // NODE_TEST_CONTEXT would make the child think it runs under this runner and skip its tests.
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', testFile], {
    cwd: REPO,
    env: { ...parentEnv, ...env, [CHILD_MARK]: '1' },
    encoding: 'utf8',
    timeout: 240_000,
  })
  const output = `${res.stdout ?? ''}${res.stderr ?? ''}`
  return { status: res.status ?? 1, output, passed: Number(output.match(/ℹ pass (\d+)/)?.[1] ?? 0) }
}

/** Whether a provider works in this process, with the reason when it does not. */
export async function providerReady(provider: Provider): Promise<{ ok: boolean; reason: string }> {
  const s = (await providerStatuses()).find((x) => x.provider === provider)
  return { ok: s?.available === true, reason: s?.detail ?? `${provider}: unknown provider` }
}

/** Providers the numeric suites run on here (cpu always; webgpu when a driver is usable in-process). */
export async function providersUnderTest(): Promise<Provider[]> {
  const out: Provider[] = ['cpu']
  if ((await providerReady('webgpu')).ok) out.push('webgpu')
  return out
}

/**
 * How a WebGPU test file runs here: in this process when a driver works, again in a child process
 * under the software Vulkan driver (`rerun`), or skipped with the reason (`skip`, also logged; under
 * CI=true this throws instead, failing the file).
 */
export async function webgpuTestMode(
  what: string,
): Promise<{ skip: string | false; rerun: boolean; reason: string }> {
  const webgpu = await providerReady('webgpu')
  const rerun = !webgpu.ok && softwareVulkanEnv() !== undefined && !isSoftwareVulkanChild()
  const why = `${webgpu.reason} (run .ci/install-debian-deps for a software driver)`
  const skip = webgpu.ok || rerun ? false : (skipUnlessCi(why) ?? false)
  if (skip) console.log(`# skipping ${what}: ${skip}`)
  return { skip, rerun, reason: webgpu.reason }
}

/** The one test of a file that re-runs itself under the software Vulkan driver: the child's tests must pass. */
export function itPassesUnderSoftwareVulkan(testFile: string, minPassed: number): void {
  it('passes in a process that uses the software Vulkan driver', () => {
    const child = rerunWithSoftwareVulkan(testFile, softwareVulkanEnv()!)
    console.log(child.output.replace(/^/gm, '#   '))
    assert.equal(child.status, 0, 'the tests failed under the software Vulkan driver')
    assert.ok(
      child.passed >= minPassed,
      `expected ${minPassed} tests to pass in the child, ${child.passed} did`,
    )
  })
}
