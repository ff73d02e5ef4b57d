/**
 * Chaos: one run survives every fault a worker fleet meets, one after the other, on an external
 * PostgreSQL server (a cluster of the machine's PostgreSQL binaries that the test stops and starts;
 * see machine-postgres.ts). Worker processes are restarted after each fault, as a supervisor would:
 * kill -9 mid-training, kill -9 while generating, SIGTERM mid-training, then the database stopped
 * for 20 s under the last worker. The run must end `succeeded` with every metric row once per
 * step and key, a gap-free stream, a checkpoint row for every checkpoint written, and no trainer
 * process outliving its killed worker. About 80 s on two cores.
 *
 * One run through all the faults rather than one run per fault: each fault then also meets the state
 * the earlier ones left behind (a resumed attempt, a requeued job), and the suite fits CI's budget.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RunEventDto } from '../../src/schemas/runs.ts'
import { buildTestApp, type TestApp } from '../helpers/build-app.ts'
import { skipUnlessCi } from '../helpers/ci.ts'
import { createInterruptibleRun } from './interruptible-run.ts'
import { machinePostgresBin, startMachinePostgres } from './machine-postgres.ts'
import type { RestartablePostgres } from './restartable-postgres.ts'
import { assertRunRecordWhole, finishedRun } from './run-record.ts'
import { until } from './until.ts'
import { spawnWorker, type WorkerProcess } from './worker-process.ts'

const ITERATIONS = 5
const OUTAGE_MS = 20_000
/** Every wait inside has its own bound; this one stops a suite that hangs anyway. */
const TEST_TIMEOUT_MS = 10 * 60_000

const bin = machinePostgresBin()
const skip = skipUnlessCi(bin ? undefined : 'no machine PostgreSQL in /usr/lib/postgresql/*/bin')

let server: RestartablePostgres | undefined
after(() => server?.remove())

const frames = (app: TestApp, runId: string): Promise<RunEventDto[]> =>
  app.repos.events.listAfter(runId, 0, 1_000_000)

/** The frames since attempt `n` started (its `running` status frame). */
function ofAttempt(fs: RunEventDto[], n: number): RunEventDto[] {
  const start = fs.findIndex(
    (f) => f.type === 'status' && f.data.status === 'running' && f.data.attempt === n,
  )
  return start < 0 ? [] : fs.slice(start)
}

/** Attempt n is training and has written a checkpoint of its own. */
const trainingIn = (n: number) => (fs: RunEventDto[]) => {
  const own = ofAttempt(fs, n)
  return (
    own.findLast((f) => f.type === 'phase')?.data.phase === 'training' &&
    own.some((f) => f.type === 'checkpoint')
  )
}

/** Attempt n ended an iteration and is generating the next one's samples. */
const generatingIn = (n: number) => (fs: RunEventDto[]) => {
  const own = ofAttempt(fs, n)
  const ended = own.findIndex((f) => f.type === 'iteration_end')
  return ended >= 0 && own.slice(ended).some((f) => f.type === 'phase' && f.data.phase === 'generating')
}

async function waitUntil(
  app: TestApp,
  runId: string,
  worker: WorkerProcess,
  what: string,
  when: (fs: RunEventDto[]) => boolean,
) {
  await until(
    async () => {
      const fs = await frames(app, runId)
      const run = await app.repos.runs.findById(runId)
      if (run?.status === 'succeeded' || run?.status === 'failed')
        assert.fail(`the run ended (${run.status}) before ${what}: ${worker.output()}`)
      return when(fs) ? true : undefined
    },
    what,
    180_000,
  )
}

/** Running, not gone and not a zombie (an orphan waits for whoever adopted it to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** kill -9 of the worker; its trainer process, left without it, must end too (it would train on unseen). */
async function killHard(worker: WorkerProcess): Promise<void> {
  const trainers = worker.trainerPids()
  assert.equal(trainers.length, 1, 'the worker trains in a process of its own')
  await worker.kill('SIGKILL')
  await until(async () => (trainers.some(alive) ? undefined : true), 'the trainer process to end', 10_000)
}

test('one run through kill -9 mid-training and mid-generation, SIGTERM and a 20 s database outage finishes whole', {
  timeout: TEST_TIMEOUT_MS,
  skip,
}, async (t) => {
  server = await startMachinePostgres(bin!)
  const app = await buildTestApp(t, { server: server.url }, { env: { EXECUTION_PROVIDER: 'cpu' } })
  const runId = await createInterruptibleRun(app, { iterations: ITERATIONS, seed: 11 })
  const faults: string[] = []

  let worker = spawnWorker(app)
  await waitUntil(app, runId, worker, 'attempt 1 mid-training', trainingIn(1))
  await killHard(worker)
  faults.push('kill -9 mid-training')

  worker = spawnWorker(app)
  await waitUntil(app, runId, worker, 'attempt 2 generating', generatingIn(2))
  await killHard(worker)
  faults.push('kill -9 while generating')

  worker = spawnWorker(app)
  await waitUntil(app, runId, worker, 'attempt 3 mid-training', trainingIn(3))
  await worker.kill('SIGTERM')
  faults.push('SIGTERM mid-training')
  const handedBack = (await frames(app, runId)).findLast((f) => f.type === 'status')
  assert.deepEqual(handedBack?.data, { status: 'queued', requeued: true }, 'SIGTERM handed the run back')

  worker = spawnWorker(app)
  await waitUntil(app, runId, worker, 'attempt 4 mid-training', trainingIn(4))
  await server.stop()
  await sleep(OUTAGE_MS)
  await server.start()
  faults.push(`database stopped for ${OUTAGE_MS / 1000} s`)

  const run = await finishedRun(app, runId)
  t.diagnostic(`faults: ${faults.join(', ')}; final step ${run.current_step}, attempt ${run.attempt}`)
  assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${worker.output()}`)
  assert.equal(run.attempt, 4, 'the last worker carried the run through the outage')
  const statuses = (await frames(app, runId)).filter((f) => f.type === 'status').map((f) => f.data)
  assert.ok(
    statuses.some((s) => s.resumed_after_outage_ms !== undefined),
    'a status frame says training resumed after the outage',
  )
  assert.equal(statuses.filter((s) => s.taken_over === true).length, 2, 'two takeovers announced')
  await assertRunRecordWhole(app, runId, ITERATIONS)
})
