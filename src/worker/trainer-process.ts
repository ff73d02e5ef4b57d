import { fork } from 'node:child_process'
import { trainingProcessEnv } from '../engine/runtime/process-env.ts'
import { reviveError, type SerializedError } from '../engine/runtime/thread-runner.ts'
import { AppError } from '../errors.ts'
import type { ControlSignal, RunTrainer, TrainerJob, TrainerResult } from '../sso/trainer-interface.ts'
import { dispatch, type TrainerMessage } from './trainer-thread.ts'

export type ToTrainerProcess =
  | { kind: 'train'; job: TrainerJob; nice: number }
  | { kind: 'control'; signal: ControlSignal; held: boolean }

export type FromTrainerProcess =
  | { kind: 'callback'; message: TrainerMessage }
  | { kind: 'result'; result: TrainerResult }
  | { kind: 'error'; error: SerializedError }

/** How often the control signal the trainer reads is refreshed (as trainerInThread does). */
const CONTROL_REFRESH_MS = 50

const CHILD = new URL('./trainer-process-main.ts', import.meta.url)

/**
 * Runs each training attempt in a process of its own (src/worker/trainer-process-main.ts, which
 * trains on a worker_thread as trainerInThread does) that exits with the attempt. All the attempt's
 * native memory then goes back to the system: onnxruntime's sessions and arenas, and what glibc's
 * per-thread malloc arenas keep once the trainer thread and onnxruntime's pool threads are gone
 * (training in threads of the worker itself, a worker's RSS grew 485 -> 1086 MB over 50 short runs).
 * Callbacks run here in the order the trainer made them; the result resolves after all of them.
 */
export const trainerInProcess =
  ({ nice }: { nice: number }): RunTrainer =>
  async (job, callbacks) => {
    const child = fork(CHILD, [], {
      // Not this process's flags (a test runner's would make the child one): tsx's loader alone.
      execArgv: ['--import', import.meta.resolve('tsx')],
      env: trainingProcessEnv(process.env),
      // Structured clone keeps NaN and Infinity metric values, which JSON would turn into null.
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`))
      // Not started at all (no 'exit' follows).
      child.once('error', (err) => resolve(err.message))
    })
    let delivered: Promise<void> = Promise.resolve()
    let callbackError: unknown
    let outcome: Exclude<FromTrainerProcess, { kind: 'callback' }> | undefined
    child.on('message', (m: FromTrainerProcess) => {
      if (m.kind !== 'callback') {
        outcome = m
        return
      }
      delivered = delivered
        .then(() => dispatch(callbacks, m.message))
        .catch((err) => {
          callbackError ??= err
        })
    })
    // A child that is gone already is dealt with on 'exit'; a message it can no longer take is dropped.
    const send = (m: ToTrainerProcess) => {
      if (child.connected) child.send(m, () => {})
    }
    let last = ''
    const refresh = () => {
      const control = {
        kind: 'control' as const,
        signal: callbacks.control(),
        held: callbacks.held?.() ?? false,
      }
      const key = `${control.signal}/${control.held}`
      if (key !== last) send(control)
      last = key
    }
    refresh()
    const timer = setInterval(refresh, CONTROL_REFRESH_MS)
    send({ kind: 'train', job, nice })
    const ended = await exited.finally(() => clearInterval(timer))
    await delivered
    if (callbackError) throw callbackError
    if (outcome?.kind === 'result') return outcome.result
    if (outcome?.kind === 'error') throw reviveError(outcome.error)
    throw new AppError('training_failed', `the trainer process exited (${ended}) before it finished`)
  }
