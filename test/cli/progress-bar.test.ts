import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatDuration, formatLoss, formatProgress, ProgressBar } from '../../src/cli/progress-bar.ts'

test('durations read as m:ss or h:mm:ss', () => {
  assert.equal(formatDuration(0), '0:00')
  assert.equal(formatDuration(65), '1:05')
  assert.equal(formatDuration(3725), '1:02:05')
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), '?')
})

test('losses keep four decimals in the usual range and switch to exponents outside it', () => {
  assert.equal(formatLoss(0.693147), '0.6931')
  assert.equal(formatLoss(1.2e-5), '1.200e-5')
})

test('the bar shows step, percentage, loss, speed and ETA when the total is known', () => {
  const text = formatProgress(
    { step: 25, totalSteps: 100, loss: 0.5, phase: 'training', iteration: 1 },
    2.5,
    10,
  )
  assert.equal(
    text,
    '[###.......]  step 25/100 25%  loss 0.5000  2.5 steps/s  ETA 0:30  training iteration 1',
  )
})

test('without a total the bar shows the step alone and no ETA', () => {
  assert.equal(formatProgress({ step: 7, loss: 1 }, 0.5), 'step 7  loss 1.0000  0.50 steps/s')
})

test('speed is measured from the steps seen over time, and the final draw ends the line', () => {
  let now = 0
  const out: string[] = []
  const bar = new ProgressBar({ write: (t: string) => out.push(t) }, { interactive: false, now: () => now })
  bar.update({ step: 0, totalSteps: 40 })
  for (let s = 1; s <= 10; s++) {
    now += 500
    bar.update({ step: s, loss: 1 / s })
  }
  assert.equal(bar.stepsPerSecond(), 2)
  assert.match(bar.text(), /step 10\/40 25% {2}loss 0\.1000 {2}2\.0 steps\/s {2}ETA 0:15/)
  bar.finish('done')
  assert.equal(out.at(-1), 'done\n')
  // Non-interactive output is throttled to about one line per second: 5 s of updates, not 11 lines.
  assert.ok(out.length <= 8, `printed ${out.length} lines`)
})

test('on a terminal the bar redraws in place and log lines go above it', () => {
  const out: string[] = []
  let now = 0
  const bar = new ProgressBar({ write: (t: string) => out.push(t) }, { interactive: true, now: () => now })
  bar.update({ step: 1 })
  now += 200
  bar.log('phase: generating')
  assert.ok(out[0].startsWith('\r'))
  assert.ok(out.some((l) => l === '\r\x1b[Kphase: generating\n'))
})
