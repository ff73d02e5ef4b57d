import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import os from 'node:os'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'

const linux = existsSync('/proc/thread-self')

test('lowerThreadPriority lowers only the calling thread, and threads it starts inherit it', {
  skip: !linux && 'needs Linux /proc/thread-self',
}, async () => {
  const before = os.getPriority()
  // The thread lowers itself, then starts a child thread: both report their own niceness.
  const source = `
    const { parentPort, Worker } = require('node:worker_threads')
    const { readFileSync } = require('node:fs')
    const niceOf = () => Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')[16])
    import(${JSON.stringify(new URL('../../src/worker/thread-priority.ts', import.meta.url).href)}).then(({ lowerThreadPriority }) => {
      const set = lowerThreadPriority(${before + 5})
      const child = new Worker("require('node:worker_threads').parentPort.postMessage(Number(require('node:fs').readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')[16]))", { eval: true })
      child.once('message', (inherited) => parentPort.postMessage({ set, own: niceOf(), inherited }))
    })`
  const worker = new Worker(source, { eval: true, execArgv: ['--import', 'tsx'] })
  const result = await new Promise<{ set: number; own: number; inherited: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await worker.terminate()
  assert.equal(result.set, before + 5)
  assert.equal(result.own, before + 5)
  assert.equal(result.inherited, before + 5)
  assert.equal(os.getPriority(), before, 'the process (main thread) keeps its priority')
})
