import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { mapPooled } from '../../src/eval/task-pool.ts'

test('mapPooled keeps the items order and never runs more than the limit at once', async () => {
  let running = 0
  let peak = 0
  // later items finish first, so completion order is the reverse of item order
  const out = await mapPooled([5, 4, 3, 2, 1], 2, async (x, i) => {
    running++
    peak = Math.max(peak, running)
    await sleep(x * 3)
    running--
    return `${i}:${x * 10}`
  })
  assert.deepEqual(out, ['0:50', '1:40', '2:30', '3:20', '4:10'])
  assert.equal(peak, 2)
})

test('mapPooled rejects with the first failure after the started calls settle, and starts no more', async () => {
  const started: number[] = []
  let settled = 0
  await assert.rejects(
    mapPooled([0, 1, 2, 3, 4], 2, async (x) => {
      started.push(x)
      await sleep(x === 0 ? 1 : 10)
      settled++
      if (x === 0) throw new Error('item 0 failed')
      return x
    }),
    /item 0 failed/,
  )
  assert.deepEqual(started, [0, 1])
  assert.equal(settled, 2)
})

test('mapPooled refuses a pool size that is not a whole number of at least 1', async () => {
  await assert.rejects(
    mapPooled([1], 0, async (x) => x),
    RangeError,
  )
  await assert.rejects(
    mapPooled([1], 1.5, async (x) => x),
    RangeError,
  )
  assert.deepEqual(await mapPooled([], 3, async (x) => x), [])
})
