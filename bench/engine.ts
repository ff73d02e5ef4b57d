/**
 * Engine benchmark (CPU provider). Prints JSON lines:
 *   matmul        float32 square MatMul GFLOP/s on this machine, before and after the rest
 *   model phases  forward, forward+backward, full step (in-graph AdamW) and full step (host AdamW) of a
 *                 transformer block (hidden 512, 8 heads, seq 256, batch 8) and an MLP: ms, GFLOP/s,
 *                 ratio to the peak: the best of the 512³, 1024³ and 2048³ MatMuls, timed in rounds
 *                 that alternate with the phase (the CPU may be shared)
 *   optimizer     ns per trainable parameter of the AdamW update (graph vs host kernel, the host one for
 *                 float32 or bfloat16 moments and float32 or float16 gradients)
 *   event_loop    longest main-thread timer delay while steps run on the main thread vs a ThreadRunner
 * Usage: node --import tsx bench/engine.ts [--threads N] [--rounds R]
 * Restarts itself with the training malloc settings when they are missing (see runtime/process-env.ts).
 */
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { parseArgs } from 'node:util'
import {
  adamW,
  buildGradStep,
  buildTrainStep,
  buildUpdateStep,
  createGraphSession,
  createStepRunner,
  DeviceState,
  Graph,
  HostAdamW,
  type HostTensor,
  hostTensor,
  matMul,
  matMulFlops,
  missingMallocSettings,
  type StepPlan,
  ThreadRunner,
  trainingProcessEnv,
  zerosHost,
} from '../src/engine/index.ts'
import { encodeHalf, HALF_GRADIENT_PEAK } from '../src/engine/optim/half-gradients.ts'
import type { handlers } from './engine-thread.ts'
import { BENCH_MLP, BENCH_TRANSFORMER, type BenchModel, mlp, transformerBlock } from './models.ts'

if (missingMallocSettings(process.env).length > 0) {
  const res = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: trainingProcessEnv(process.env),
  })
  process.exit(res.status ?? 1)
}

const { values: args } = parseArgs({
  options: { threads: { type: 'string' }, rounds: { type: 'string', default: '3' } },
})
const threads = Number(args.threads ?? os.availableParallelism())
const rounds = Number(args.rounds)
const sessionOptions = { provider: 'cpu' as const, intraOpThreads: threads }

const emit = (row: Record<string, unknown>) => console.log(JSON.stringify(row))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/**
 * Median ms of `fn` per round, over `rounds` rounds of at least `minMs` each; returns the median of
 * the rounds, or with `best` the fastest round (the machine is shared).
 */
async function timeIt(fn: () => Promise<unknown> | unknown, minMs = 600, best = false): Promise<number> {
  await fn()
  await fn()
  const perRound: number[] = []
  for (let r = 0; r < rounds; r++) perRound.push(await medianOfRuns(fn, minMs))
  return best ? Math.min(...perRound) : median(perRound)
}

function rand(n: number): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5
  return a
}

/** The square MatMul sizes whose best GFLOP/s is the peak (no one size is the fastest everywhere). */
const PEAK_SIZES = [512, 1024, 2048]

interface SquareMatMul {
  n: number
  run: () => Promise<unknown>
  release: () => Promise<void>
}

async function squareMatMul(n: number): Promise<SquareMatMul> {
  const g = new Graph({ name: `matmul_${n}` })
  g.output(matMul(g, g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])), 'c')
  const session = await createGraphSession(g.serialize(), sessionOptions)
  const feeds = {
    a: hostTensor('float32', [n, n], rand(n * n)),
    b: hostTensor('float32', [n, n], rand(n * n)),
  }
  return { n, run: () => session.run(feeds), release: () => session.release() }
}

/** GFLOP/s of square float32 MatMuls, best round (run first and last: contention only lowers it). */
async function matMulPeak(label: string): Promise<number> {
  let peak = 0
  for (const n of PEAK_SIZES) {
    const m = await squareMatMul(n)
    const ms = await timeIt(m.run, 600, true)
    const gflops = matMulFlops(n, n, n) / ms / 1e6
    emit({ bench: 'matmul', when: label, n, threads, ms: +ms.toFixed(3), gflops: +gflops.toFixed(1) })
    peak = Math.max(peak, gflops)
    await m.release()
  }
  return peak
}

/** The peers every phase is compared with: every peak size, timed in the same rounds as the phase. */
let peakPeers: SquareMatMul[] | undefined

/** The best GFLOP/s of the peak sizes now. */
async function peakNow(peers: SquareMatMul[]): Promise<number> {
  let best = 0
  for (const m of peers)
    best = Math.max(best, matMulFlops(m.n, m.n, m.n) / (await medianOfRuns(m.run, 200)) / 1e6)
  return best
}

async function medianOfRuns(fn: () => Promise<unknown> | unknown, minMs: number): Promise<number> {
  const times: number[] = []
  const start = performance.now()
  while (times.length < 3 || performance.now() - start < minMs) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  return median(times)
}

/**
 * Times a phase in rounds that alternate with the reference MatMul, so that each round's ratio
 * compares two measurements taken under the same load (the CPU is shared); reports medians.
 */
async function phase(model: string, name: string, fn: () => Promise<unknown>, flops: number, extra = {}) {
  peakPeers ??= await Promise.all(PEAK_SIZES.map(squareMatMul))
  await fn()
  await fn()
  const ms: number[] = []
  const ratios: number[] = []
  const peaks: number[] = []
  for (let r = 0; r < rounds; r++) {
    const peak = await peakNow(peakPeers)
    const phaseMs = await medianOfRuns(fn, 600)
    ms.push(phaseMs)
    peaks.push(peak)
    ratios.push(flops / phaseMs / 1e6 / peak)
  }
  emit({
    bench: model,
    phase: name,
    threads,
    ms: +median(ms).toFixed(2),
    gflops: +(flops / median(ms) / 1e6).toFixed(1),
    matmul_gflops_alongside: +median(peaks).toFixed(1),
    ratio_to_peak: +median(ratios).toFixed(3),
    ...extra,
  })
}

async function benchModel(name: string, make: () => BenchModel): Promise<void> {
  const fwd = make()
  fwd.g.output(fwd.loss, 'loss')
  const fwdSession = await createGraphSession(fwd.g.serialize(), sessionOptions)
  const fwdFeeds = { ...fwd.batch, ...fwd.init }
  await phase(name, 'forward', () => fwdSession.run(fwdFeeds), fwd.forwardFlops)
  await fwdSession.release()

  const gm = make()
  const gradStep = buildGradStep(gm.g, { loss: gm.loss, params: gm.params })
  const gradSession = await createGraphSession(gradStep.graph.serialize(), sessionOptions)
  const gradFeeds = { ...gm.batch, ...gm.init }
  const params = gm.params.reduce((n, p) => n + (p.tensor.shape as number[]).reduce((a, b) => a * b, 1), 0)
  await phase(name, 'forward_backward', () => gradSession.run(gradFeeds), gm.trainFlops, {
    params,
    note: 'gradients returned to the host',
  })
  await phase(name, 'forward_backward_loss_only', () => gradSession.run(gradFeeds, ['loss']), gm.trainFlops, {
    note: 'same graph, only the loss fetched (onnxruntime skips nothing: gradients are still computed)',
  })
  await gradSession.release()

  const hp = { weightDecay: 0.01 }
  const fused = make()
  const host = make()
  const plans: [string, StepPlan][] = [
    [
      'step_graph_adamw',
      {
        fused: buildTrainStep(fused.g, {
          loss: fused.loss,
          params: fused.params,
          optimizer: adamW(hp),
          clip: true,
        }),
      },
    ],
    [
      'step_host_adamw',
      { grads: buildGradStep(host.g, { loss: host.loss, params: host.params }), hostAdamW: hp, clip: true },
    ],
  ]
  for (const [label, plan] of plans) {
    const runner = await createStepRunner(plan, sessionOptions)
    runner.init(fused.init)
    let step = 0
    await phase(
      name,
      label,
      () => runner.step([fused.batch], { step: ++step, lr: 1e-4, maxGradNorm: 1 }),
      fused.trainFlops,
    )
    await runner.release()
  }
}

/** ns per param of one AdamW update over `n` float32 params: update graph (state in/out) vs host kernel. */
async function benchOptimizer(model: BenchModel): Promise<void> {
  const params = model.params.map((p) => ({
    name: p.name,
    shape: p.tensor.shape as number[],
    decay: p.decay,
  }))
  const n = params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)
  const update = buildUpdateStep({
    params,
    dtype: 'float32',
    optimizer: adamW({ weightDecay: 0.01 }),
    clip: true,
  })
  const session = await createGraphSession(update.graph.serialize(), {
    ...sessionOptions,
    stateOutputs: update.stateOutputs,
  })
  const state = new DeviceState('cpu')
  const grads: Record<string, HostTensor> = {}
  for (const p of params) {
    state.set(p.name, model.init[p.name])
    grads[p.name] = hostTensor('float32', p.shape, rand(p.shape.reduce((a, b) => a * b, 1)))
    state.set(`optim.grad_acc.${p.name}`, grads[p.name])
  }
  for (const s of update.slots)
    state.set(s.name, zerosHost('float32', params.find((p) => p.name === s.param)!.shape))
  let step = 0
  const feeds = () => ({
    ...update.optimizer.feeds('float32', { step: ++step, lr: 1e-4 }),
    'optim.max_grad_norm': hostTensor('float32', [], Float32Array.of(1)),
    'optim.grad_scale': hostTensor('float32', [], Float32Array.of(1)),
  })
  const graphMs = await timeIt(() => session.runWithState(state, feeds()))
  emit({
    bench: 'optimizer',
    impl: 'adamw_graph',
    params: n,
    threads,
    ms: +graphMs.toFixed(2),
    ns_per_param: +((graphMs * 1e6) / n).toFixed(2),
  })
  await Promise.all([session.release(), state.release()])

  // every storage of the moments and of the gradients the update reads
  const halfGrads = Object.fromEntries(
    Object.entries(grads).map(([name, t]) => {
      const bits = Uint16Array.from(t.data as Float32Array, (x) => encodeHalf(x * HALF_GRADIENT_PEAK))
      return [name, hostTensor('float16', t.dims, bits)]
    }),
  )
  for (const stateDtype of ['float32', 'bfloat16'] as const) {
    for (const gradDtype of ['float32', 'float16'] as const) {
      const host = new HostAdamW(params, { weightDecay: 0.01, stateDtype, gradDtype })
      const given = gradDtype === 'float16' ? halfGrads : grads
      const copyIn = () => {
        for (const p of params)
          host.setGrad(p.name, given[p.name], false, gradDtype === 'float16' ? HALF_GRADIENT_PEAK : 1)
      }
      for (const p of params) host.load(p.name, model.init[p.name])
      copyIn()
      let hostStep = 0
      const kernelMs = await timeIt(() => host.step({ step: ++hostStep, lr: 1e-4 }, 1))
      const normMs = await timeIt(() => host.gradNorm())
      const copyMs = await timeIt(copyIn)
      const total = kernelMs + normMs + copyMs
      emit({
        bench: 'optimizer',
        impl: 'adamw_host_wasm_simd',
        state_dtype: stateDtype,
        grad_dtype: gradDtype,
        params: n,
        threads: 1,
        ms: +total.toFixed(2),
        ns_per_param: +((total * 1e6) / n).toFixed(2),
        parts_ns_per_param: {
          update: +((kernelMs * 1e6) / n).toFixed(2),
          grad_norm: +((normMs * 1e6) / n).toFixed(2),
          grad_copy_in: +((copyMs * 1e6) / n).toFixed(2),
        },
      })
    }
  }
}

/** Longest gap between 5 ms timer ticks on this thread while `work` runs. */
async function maxTimerGap(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now()
  let gap = 0
  const timer = setInterval(() => {
    const now = performance.now()
    gap = Math.max(gap, now - last)
    last = now
  }, 5)
  await work()
  clearInterval(timer)
  return gap
}

async function benchEventLoop(steps: number): Promise<void> {
  const m = transformerBlock(BENCH_TRANSFORMER)
  const fused = buildTrainStep(m.g, { loss: m.loss, params: m.params, optimizer: adamW(), clip: true })
  const runner = await createStepRunner({ fused }, sessionOptions)
  runner.init(m.init)
  const mainGap = await maxTimerGap(async () => {
    for (let t = 1; t <= steps; t++) await runner.step([m.batch], { step: t, lr: 1e-4, maxGradNorm: 1 })
  })
  await runner.release()
  const thread = new ThreadRunner<typeof handlers>(new URL('./engine-thread.ts', import.meta.url), {
    name: 'bench',
  })
  await thread.call('open', threads)
  const threadGap = await maxTimerGap(() => thread.call('steps', steps))
  await thread.close()
  emit({
    bench: 'event_loop',
    steps,
    max_timer_gap_ms_steps_on_main_thread: Math.round(mainGap),
    max_timer_gap_ms_steps_on_thread_runner: Math.round(threadGap),
  })
}

emit({
  bench: 'environment',
  node: process.version,
  cpus: os.cpus().length,
  model: os.cpus()[0]?.model,
  threads,
})
const peakBefore = await matMulPeak('before')
await benchModel('transformer_block', () => transformerBlock(BENCH_TRANSFORMER))
await benchModel('mlp', () => mlp(BENCH_MLP))
await benchOptimizer(transformerBlock(BENCH_TRANSFORMER))
await benchEventLoop(5)
const peakAfter = await matMulPeak('after')
emit({
  bench: 'matmul_peak',
  threads,
  peak_gflops: +Math.max(peakBefore, peakAfter).toFixed(1),
  before: +peakBefore.toFixed(1),
  after: +peakAfter.toFixed(1),
  note: `ratio_to_peak of each phase is against the best of the ${PEAK_SIZES.join('³, ')}³ MatMuls, timed in rounds alternating with it`,
})
