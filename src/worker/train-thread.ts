import { workerData } from 'node:worker_threads'
import { setSessionDefaults } from '../engine/runtime/index.ts'
import { serveThread, type ThreadContext } from '../engine/runtime/thread-runner.ts'
import { runTrainer } from '../sso/trainer.ts'
import type { TrainerJob } from '../sso/trainer-interface.ts'
import { lowerThreadPriority } from './thread-priority.ts'
import { CONTROL_HOLD, CONTROL_SIGNALS, type TrainerMessage } from './trainer-thread.ts'

/**
 * worker_thread entry of the trainer: session.run blocks this thread for whole steps, so the
 * worker's event loop (heartbeats, Prisma transactions, status polls) stays responsive. Callbacks
 * travel to the main side as ordered messages; control() reads a shared word the main side keeps
 * current, so it answers synchronously between steps.
 */
const control = new Int32Array(workerData.control as SharedArrayBuffer)
// Before any session exists, so onnxruntime's pool threads inherit the lower priority; they also
// sleep rather than spin between parallel sections, leaving idle cycles to the service.
if ((workerData.nice as number) > 0) {
  lowerThreadPriority(workerData.nice as number)
  setSessionDefaults({ allowSpinning: false })
}

serveThread({
  train: (job: TrainerJob, ctx: ThreadContext) => {
    const send = (message: TrainerMessage) => ctx.emit(message)
    return runTrainer(job, {
      onMetrics: (batch) => send({ kind: 'metrics', batch }),
      onEvent: (event) => send({ kind: 'event', event }),
      onCheckpoint: (info) => send({ kind: 'checkpoint', info }),
      onSamples: (iteration, records) => send({ kind: 'samples', iteration, records }),
      control: () => {
        // Held: this thread sleeps between steps until the main side lets it go (or stops it).
        while (Atomics.load(control, 0) === CONTROL_HOLD) Atomics.wait(control, 0, CONTROL_HOLD, 1000)
        return CONTROL_SIGNALS[Atomics.load(control, 0)] ?? 'continue'
      },
    })
  },
})
