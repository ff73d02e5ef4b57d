import { ThreadRunner } from '../engine/runtime/thread-runner.ts'
import type {
  CheckpointInfo,
  ControlSignal,
  MetricsBatch,
  RunTrainer,
  TrainerCallbacks,
  TrainerEvent,
  TrainerResult,
} from '../sso/trainer-interface.ts'

export const CONTROL_SIGNALS: readonly ControlSignal[] = ['continue', 'cancel', 'pause']
/** Control word value (beyond the signals) that keeps the trainer waiting in control(): see held(). */
export const CONTROL_HOLD = CONTROL_SIGNALS.length

export type TrainerMessage =
  | { kind: 'metrics'; batch: MetricsBatch }
  | { kind: 'event'; event: TrainerEvent }
  | { kind: 'checkpoint'; info: CheckpointInfo }
  | { kind: 'samples'; iteration: number; records: Record<string, unknown>[] }

/** How often the main side refreshes the control word the thread reads. */
const CONTROL_REFRESH_MS = 50

type TrainThread = { train: (job: Parameters<RunTrainer>[0]) => Promise<TrainerResult> }

/**
 * Runs the SSO trainer on a worker_thread (src/worker/train-thread.ts) whose niceness is raised to
 * `nice` (0 keeps the caller's). Callbacks run on the caller's thread in the order the trainer made
 * them, and the result resolves only after all of them (checkpoint rows included) have finished.
 */
export const trainerInThread =
  ({ nice }: { nice: number }): RunTrainer =>
  async (job, callbacks) => {
    const controlBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)
    const controlWord = new Int32Array(controlBuffer)
    let delivered: Promise<void> = Promise.resolve()
    let callbackError: unknown
    const deliver = (message: TrainerMessage) => {
      delivered = delivered
        .then(() => dispatch(callbacks, message))
        .catch((err) => {
          callbackError ??= err
        })
    }
    const refresh = () => {
      const signal = callbacks.control()
      const word =
        signal === 'continue' && callbacks.held?.() ? CONTROL_HOLD : CONTROL_SIGNALS.indexOf(signal)
      if (Atomics.exchange(controlWord, 0, word) !== word) Atomics.notify(controlWord, 0)
    }
    refresh()
    const timer = setInterval(refresh, CONTROL_REFRESH_MS)
    const runner = new ThreadRunner<TrainThread>(new URL('./train-thread.ts', import.meta.url), {
      name: 'trainer',
      workerData: { control: controlBuffer, nice },
      onEvent: (message) => deliver(message as TrainerMessage),
    })
    try {
      const result = await runner.call('train', job)
      await delivered
      if (callbackError) throw callbackError
      return result
    } finally {
      clearInterval(timer)
      await delivered
      await runner.close()
    }
  }

/** Hands one message of the trainer to the callback it stands for. */
export async function dispatch(callbacks: TrainerCallbacks, message: TrainerMessage): Promise<void> {
  switch (message.kind) {
    case 'metrics':
      return callbacks.onMetrics(message.batch)
    case 'event':
      return callbacks.onEvent(message.event)
    case 'checkpoint':
      return callbacks.onCheckpoint(message.info)
    case 'samples':
      return callbacks.onSamples?.(message.iteration, message.records)
  }
}
