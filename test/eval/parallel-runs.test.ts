import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ValidationError } from '../../src/errors.ts'
import { benchPrincipleSet } from '../../src/eval/benchmark-data.ts'
import { longestOnlinePrompt, parallelRuns } from '../../src/eval/parallel-runs.ts'
import type { ChatPrompt } from '../../src/sso/policy-port.ts'

const GB = 2 ** 30

test('runs side by side: the fewest of cores, cap and what memory holds at each run peak', () => {
  const machine = { cores: 8, cap: 4, availableBytes: 24 * GB }
  assert.deepEqual(parallelRuns({ ...machine, runBytes: 2 * GB }), {
    jobs: 4,
    limitedBy: 'cap',
    memoryFits: 10,
  })
  assert.deepEqual(parallelRuns({ ...machine, cores: 2, runBytes: 2 * GB }), {
    jobs: 2,
    limitedBy: 'cores',
    memoryFits: 10,
  })
  // 24 GB at 90% holds two runs of 9.5 GB, not three
  assert.deepEqual(parallelRuns({ ...machine, runBytes: 9.5 * GB }), {
    jobs: 2,
    limitedBy: 'memory',
    memoryFits: 2,
  })
})

test('runs side by side: a --jobs that does not fit, or a run that fits nowhere, is refused with the estimate', () => {
  const machine = { cores: 4, cap: 4, availableBytes: 16 * GB }
  assert.deepEqual(parallelRuns({ ...machine, runBytes: 7 * GB, requested: 2 }), {
    jobs: 2,
    limitedBy: 'requested',
    memoryFits: 2,
  })
  assert.throws(
    () => parallelRuns({ ...machine, runBytes: 7 * GB, requested: 3 }),
    (e: unknown) =>
      e instanceof ValidationError &&
      /--jobs 3 does not fit: one run needs an estimated 7\.0 GB/.test(e.message),
  )
  assert.throws(
    () => parallelRuns({ ...machine, runBytes: 15 * GB }),
    (e: unknown) => e instanceof ValidationError && /one run needs an estimated 15\.0 GB/.test(e.message),
  )
})

test('the longest online prompt: each query plain and under the longest principles, both sides', () => {
  const set = benchPrincipleSet()
  const prompts: ChatPrompt[] = []
  const length = (p: ChatPrompt) => {
    prompts.push(p)
    return (p.system ?? '').length + p.user.length
  }
  const longest = longestOnlinePrompt(length, set, ['short', 'a longer request'], 2)
  assert.equal(prompts.length, 6)
  assert.deepEqual(
    prompts.filter((p) => p.system === undefined).map((p) => p.user),
    ['short', 'a longer request'],
  )
  // no pair of principles the policy could pick makes a longer system message than the two longest
  for (const side of ['good', 'bad'] as const) {
    const [first, second] = [...set.principles].sort((a, b) => b[side].length - a[side].length)
    assert.ok(
      prompts.some((p) => p.system?.includes(first[side]) && p.system.includes(second[side])),
      `${side}: the two longest principles are in one message`,
    )
  }
  const systems = prompts.map((p) => (p.system ?? '').length)
  assert.equal(longest, Math.max(...systems) + 'a longer request'.length)
})
