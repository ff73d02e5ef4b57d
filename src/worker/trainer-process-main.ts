import { serializeError } from '../engine/runtime/thread-runner.ts'
import type { ControlSignal } from '../sso/trainer-interface.ts'
import type { FromTrainerProcess, ToTrainerProcess } from './trainer-process.ts'
import { type TrainerMessage, trainerInThread } from './trainer-thread.ts'

/**
 * Entry of the trainer process (see trainerInProcess): trains one job on a worker_thread, forwards
 * its callbacks to the worker, reads control from what the worker last sent, and exits.
 */
let control: ControlSignal = 'continue'
let held = false

const send = (m: FromTrainerProcess) => new Promise<void>((resolve) => process.send!(m, () => resolve()))

// The worker decides what a signal means for its runs (SIGTERM: checkpoint and hand back), and says
// so through control; a signal sent to the whole process group must not end the attempt here first.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => {})
// The worker is gone (killed): nobody is left to record what this attempt would produce.
process.on('disconnect', () => process.exit(1))

process.on('message', (m: ToTrainerProcess) => {
  if (m.kind === 'control') {
    control = m.signal
    held = m.held
    return
  }
  const forward = (message: TrainerMessage) => {
    send({ kind: 'callback', message })
  }
  trainerInThread({ nice: m.nice })(m.job, {
    onMetrics: (batch) => forward({ kind: 'metrics', batch }),
    onEvent: (event) => forward({ kind: 'event', event }),
    onCheckpoint: (info) => forward({ kind: 'checkpoint', info }),
    onSamples: (iteration, records) => forward({ kind: 'samples', iteration, records }),
    control: () => control,
    held: () => held,
  })
    .finally(() => {
      // The process's peak resident set (maxRSS, in KiB): the whole attempt's, as it trained alone here.
      const bytes = process.resourceUsage().maxRSS * 1024
      forward({
        kind: 'event',
        event: {
          type: 'info',
          message: `trainer process peak memory ${Math.round(bytes / 2 ** 20)} MB`,
          data: { peak_rss_bytes: bytes },
        },
      })
    })
    .then(
      (result) => send({ kind: 'result', result }),
      (err) => send({ kind: 'error', error: serializeError(err) }),
    )
    .finally(() => process.exit(0))
})
