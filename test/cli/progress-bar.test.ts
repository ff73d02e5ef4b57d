import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatDuration, formatLoss, formatProgress, ProgressBar } from '../../src/cli/progress-bar.ts'
import type { StreamFrame } from '../../src/cli/run-stream.ts'
import { frameLogLine, progressPatch } from '../../src/cli/watch-run.ts'

test('durations read as m:ss or h:mm:ss', () => {
  assert.equal(formatDuration(0), '0:00')
  assert.equal(formatDuration(65), '1:05')
  assert.equal(formatDuration(3725), '1:02:05')
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), '?')
})

test('losses keep four decimals in the usual range and switch to exponents outside it', () => {
  assert.equal(formatLoss(0.612345), '0.6123')
  assert.equal(formatLoss(1.2e-5), '1.200e-5')
})

test('the bar shows the phase fraction, iteration, step, loss, speed and ETA', () => {
  const state = { step: 57, done: 25, total: 100, loss: 0.5, phase: 'training', iteration: 2, iterations: 3 }
  assert.equal(
    formatProgress(state, 2.5, 10),
    '[###.......]  training 25/100 25%  iteration 2/3  step 57  loss 0.5000  2.5/s  ETA 0:30',
  )
})

test('without a phase count the bar shows the step alone and no ETA', () => {
  assert.equal(
    formatProgress({ step: 7, loss: 1, phase: 'generating' }, 0.5),
    'generating  step 7  loss 1.0000',
  )
})

test('speed is measured over the phase, restarts with a new phase, and the final draw ends the line', () => {
  let now = 0
  const out: string[] = []
  const bar = new ProgressBar({ write: (t: string) => out.push(t) }, { interactive: false, now: () => now })
  bar.update({ phase: 'training', done: 0, total: 40 })
  for (let s = 1; s <= 10; s++) {
    now += 500
    bar.update({ step: s, done: s, loss: 1 / s })
  }
  assert.equal(bar.perSecond(), 2)
  assert.match(bar.text(), /training 10\/40 25% {2}step 10 {2}loss 0\.1000 {2}2\.0\/s {2}ETA 0:15/)
  bar.update({ phase: 'generating' })
  assert.equal(bar.perSecond(), undefined)
  assert.equal(bar.text(), 'generating  step 10  loss 0.1000')
  bar.finish('done')
  assert.equal(out.at(-1), 'done\n')
  // Non-interactive output is throttled to about one line per second: 5 s of updates, not 13 lines.
  assert.ok(out.length <= 9, `printed ${out.length} lines`)
})

test('in a log (not a terminal) the final state is not printed again when it was the last line', () => {
  const out: string[] = []
  const bar = new ProgressBar({ write: (t: string) => out.push(t) }, { interactive: false, now: () => 0 })
  bar.update({ step: 4, status: 'succeeded' })
  bar.log('  status: succeeded')
  bar.finish('run r succeeded')
  assert.deepEqual(out, ['step 4  succeeded\n', '  status: succeeded\n', 'run r succeeded\n'])
})

test('on a terminal the bar redraws in place and log lines go above it', () => {
  const out: string[] = []
  const bar = new ProgressBar({ write: (t: string) => out.push(t) }, { interactive: true, now: () => 0 })
  bar.update({ step: 1 })
  bar.log('phase: generating')
  assert.ok(out[0].startsWith('\r'))
  assert.ok(out.includes('\r\x1b[Kphase: generating\n'))
})

const frame = (type: string, step: number, data: Record<string, unknown>): StreamFrame => ({
  type,
  step,
  data,
  seq: 1,
  ts: '2026-01-01T00:00:00Z',
})

test('stream frames map onto the bar: metrics, progress, phase and status', () => {
  assert.deepEqual(
    progressPatch(frame('metrics', 12, { iteration: 1, values: { loss: 0.7, 'sso/g': 0.1 } })),
    {
      iteration: 1,
      step: 12,
      loss: 0.7,
    },
  )
  assert.deepEqual(progressPatch(frame('progress', 12, { phase: 'training', done: 3, total: 8 })), {
    iteration: undefined,
    phase: 'training',
    done: 3,
    total: 8,
  })
  assert.equal(progressPatch(frame('status', 12, { status: 'cancelled' })).status, 'cancelled')
  assert.equal(frameLogLine(frame('progress', 1, { message: 'training 3/8' })), undefined)
  assert.equal(
    frameLogLine(frame('phase', 1, { message: 'generating 16 queries' })),
    'phase: generating 16 queries',
  )
  assert.equal(frameLogLine(frame('status', 1, { status: 'running' })), 'status: running')
})
