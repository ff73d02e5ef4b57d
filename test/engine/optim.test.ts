import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { maxRelDiff } from '../../bench/compare.ts'
import { Graph, type Tensor } from '../../src/engine/graph.ts'
import { add, matMul, mul, reduceMean, sub } from '../../src/engine/ops/index.ts'
import { encodeHalf, HALF_GRADIENT_PEAK } from '../../src/engine/optim/half-gradients.ts'
import {
  accumulatorName,
  adamW,
  buildGradStep,
  buildMicroStep,
  buildTrainStep,
  buildUpdateStep,
  createStepRunner,
  HostAdamW,
  LossScaler,
  lrAt,
  type Optimizer,
  STEP_INPUTS,
  type StepPlan,
  sgdMomentum,
  slotName,
  validateSchedule,
} from '../../src/engine/optim/index.ts'
import { createGraphSession, type HostTensor, hostTensor } from '../../src/engine/runtime/index.ts'
import { AppError } from '../../src/errors.ts'
import { float16ToNumber } from '../../src/model/safetensors.ts'
import {
  type AdamWHyper,
  adamWRef,
  clipCoefRef,
  globalNormRef,
  type LinearBatch,
  linearLossAndGrads,
  sgdRef,
} from './fixtures/linear-reference.ts'

const IN = 3
const OUT = 4

/** Deterministic pseudo-random numbers in [-1, 1). */
function rand(seed: number, n: number): Float64Array {
  let s = seed >>> 0
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 31 - 1
  })
}

/** loss = mean((X·W + b − Y)²) with metric `pred/mean` = mean(X·W + b), params W (decayed) and b (not). */
function linearModel(dtype: 'float32' | 'float64', rows: number | string) {
  const g = new Graph({ name: 'linear' })
  const X = g.input('X', dtype, [rows, IN])
  const Y = g.input('Y', dtype, [rows, OUT])
  const W = g.input('W', dtype, [IN, OUT])
  const b = g.input('b', dtype, [OUT])
  const pred = add(g, matMul(g, X, W), b)
  const err = sub(g, pred, Y)
  const loss = reduceMean(g, mul(g, err, err))
  const params = [
    { name: 'W', tensor: W },
    { name: 'b', tensor: b, decay: false },
  ]
  return { g, loss, params, metrics: { 'pred/mean': reduceMean(g, pred) } as Record<string, Tensor> }
}

function batch(seed: number, rows: number): LinearBatch {
  return { X: rand(seed, rows * IN), Y: rand(seed + 1, rows * OUT).map((y) => 3 * y), rows }
}

function feeds(dtype: 'float32' | 'float64', bt: LinearBatch): Record<string, HostTensor> {
  const arr = (a: Float64Array) => (dtype === 'float64' ? Float64Array.from(a) : Float32Array.from(a))
  return {
    X: hostTensor(dtype, [bt.rows, IN], arr(bt.X)),
    Y: hostTensor(dtype, [bt.rows, OUT], arr(bt.Y)),
  }
}

const init = { W: rand(11, IN * OUT), b: rand(12, OUT) }

function initialParams(dtype: 'float32' | 'float64'): Record<string, HostTensor> {
  const arr = (a: Float64Array) => (dtype === 'float64' ? Float64Array.from(a) : Float32Array.from(a))
  return { W: hostTensor(dtype, [IN, OUT], arr(init.W)), b: hostTensor(dtype, [OUT], arr(init.b)) }
}

function assertClose(
  got: ArrayLike<number> | number,
  want: ArrayLike<number> | number,
  tol: number,
  what: string,
) {
  const g = typeof got === 'number' ? [got] : got
  const w = typeof want === 'number' ? [want] : want
  assert.equal(g.length, w.length, `${what}: length`)
  const e = maxRelDiff(g, w)
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`)
}

const SCHEDULE = { kind: 'cosine', lr: 0.05, totalSteps: 6, warmupSteps: 2, minLr: 0.005 } as const
const STEPS = 6
const MAX_NORM = 1.5

function fusedPlan(
  dtype: 'float32' | 'float64',
  optimizer: Optimizer,
  rows: number,
  clip = true,
  scaling: { lossScale?: boolean; skipNonFinite?: boolean } = {},
): StepPlan {
  const m = linearModel(dtype, rows)
  return {
    fused: buildTrainStep(m.g, {
      loss: m.loss,
      params: m.params,
      optimizer,
      clip,
      metrics: m.metrics,
      ...scaling,
    }),
  }
}

function accumulationPlan(
  dtype: 'float32' | 'float64',
  optimizer: Optimizer,
  scaling: { lossScale?: boolean; skipNonFinite?: boolean } = {},
): StepPlan {
  const m = linearModel(dtype, 'rows')
  const micro = buildMicroStep(m.g, {
    loss: m.loss,
    params: m.params,
    metrics: m.metrics,
    lossScale: scaling.lossScale,
  })
  const update = buildUpdateStep({
    params: [
      { name: 'W', shape: [IN, OUT] },
      { name: 'b', shape: [OUT], decay: false },
    ],
    dtype,
    optimizer,
    clip: true,
    skipNonFinite: scaling.skipNonFinite,
  })
  return { micro, update }
}

describe('learning-rate schedules', () => {
  it('warm up linearly, then stay, fall linearly or follow a half cosine to minLr', () => {
    const constant = { kind: 'constant', lr: 1, warmupSteps: 4 } as const
    assert.deepEqual(
      [0, 1, 2, 3, 4, 99].map((s) => lrAt(constant, s)),
      [0.25, 0.5, 0.75, 1, 1, 1],
    )
    const linear = { kind: 'linear', lr: 1, totalSteps: 12, warmupSteps: 2 } as const
    assert.deepEqual(
      [1, 2, 7, 12, 20].map((s) => lrAt(linear, s)),
      [1, 1, 0.5, 0, 0],
    )
    const cosine = { kind: 'cosine', lr: 1, totalSteps: 10, warmupRatio: 0.2, minLr: 0.1 } as const
    assert.equal(lrAt(cosine, 0), 0.5)
    assert.equal(lrAt(cosine, 2), 1)
    assert.ok(Math.abs(lrAt(cosine, 6) - 0.55) < 1e-15)
    assert.ok(Math.abs(lrAt(cosine, 10) - 0.1) < 1e-15)
    assert.equal(lrAt({ kind: 'cosine', lr: 1, totalSteps: 10, warmupRatio: 0.15 }, 0), 0.5) // ceil(1.5) = 2 steps
  })

  it('rejects inconsistent settings with the offending value', () => {
    assert.throws(() => validateSchedule({ kind: 'linear', lr: -1, totalSteps: 3 }), /lr must be .* got -1/)
    assert.throws(
      () => validateSchedule({ kind: 'cosine', lr: 1, totalSteps: 3, minLr: 2 }),
      /minLr must be in \[0, lr=1\], got 2/,
    )
    assert.throws(
      () => validateSchedule({ kind: 'constant', lr: 1, warmupRatio: 0.1 }),
      /warmupRatio needs totalSteps/,
    )
    assert.throws(
      () => validateSchedule({ kind: 'linear', lr: 1, totalSteps: 3, warmupSteps: 1, warmupRatio: 0.1 }),
      /not both/,
    )
    assert.throws(() => lrAt({ kind: 'constant', lr: 1 }, -1), /step must be an integer >= 0, got -1/)
  })
})

interface RefState {
  W: Float64Array
  b: Float64Array
}

/** Runs the float64 reference for STEPS steps of `rows`-row batches; returns per-step loss/norm/metric. */
function reference(
  update: (p: RefState, g: RefState, step: number, lr: number) => void,
  microRows: number[],
) {
  const p: RefState = { W: Float64Array.from(init.W), b: Float64Array.from(init.b) }
  const log: { loss: number; gradNorm: number; predMean: number }[] = []
  for (let t = 0; t < STEPS; t++) {
    const gW = new Float64Array(IN * OUT)
    const gb = new Float64Array(OUT)
    let loss = 0
    let predMean = 0
    microRows.forEach((rows, k) => {
      const r = linearLossAndGrads(p, batch(100 * t + 10 * k, rows), IN, OUT)
      for (let i = 0; i < gW.length; i++) gW[i] += r.gW[i] / microRows.length
      for (let i = 0; i < gb.length; i++) gb[i] += r.gb[i] / microRows.length
      loss += r.loss / microRows.length
      predMean += r.predMean / microRows.length
    })
    const gradNorm = globalNormRef([gW, gb])
    const coef = clipCoefRef(gradNorm, MAX_NORM)
    update(p, { W: gW.map((x) => x * coef), b: gb.map((x) => x * coef) }, t + 1, lrAt(SCHEDULE, t))
    log.push({ loss, gradNorm, predMean })
  }
  return { p, log }
}

async function runPlan(
  plan: StepPlan,
  dtype: 'float32' | 'float64',
  microRows: number[],
  slots = false,
  lossScale?: number,
) {
  const runner = await createStepRunner(plan, { provider: 'cpu', intraOpThreads: 1 })
  runner.init(initialParams(dtype))
  const log: { loss: number; gradNorm: number; predMean: number }[] = []
  for (let t = 0; t < STEPS; t++) {
    const micro = microRows.map((rows, k) => feeds(dtype, batch(100 * t + 10 * k, rows)))
    const input = { step: t + 1, lr: lrAt(SCHEDULE, t), maxGradNorm: MAX_NORM, lossScale }
    const r = await runner.step(micro, input)
    log.push({ loss: r.loss, gradNorm: r.gradNorm, predMean: r.metrics['pred/mean'] })
  }
  const state = await runner.read(slots)
  await runner.release()
  return { log, state }
}

const ADAM: AdamWHyper = { lr: 0, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.1 }

function adamReference(microRows: number[]) {
  const m = { W: new Float64Array(IN * OUT), b: new Float64Array(OUT) }
  const v = { W: new Float64Array(IN * OUT), b: new Float64Array(OUT) }
  const ref = reference((p, g, step, lr) => {
    adamWRef(p.W, g.W, m.W, v.W, step, { ...ADAM, lr }, true)
    adamWRef(p.b, g.b, m.b, v.b, step, { ...ADAM, lr }, false)
  }, microRows)
  return { ...ref, m, v }
}

function compareLogs(
  got: { loss: number; gradNorm: number; predMean: number }[],
  want: typeof got,
  tol: number,
) {
  got.forEach((g, t) => {
    assertClose(g.loss, want[t].loss, tol, `step ${t + 1} loss`)
    assertClose(g.gradNorm, want[t].gradNorm, tol, `step ${t + 1} grad norm`)
    assertClose(g.predMean, want[t].predMean, tol, `step ${t + 1} metric`)
  })
}

describe('optimizers against the float64 reference', () => {
  const adam = () =>
    adamW({ beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps, weightDecay: ADAM.weightDecay })

  it('AdamW with clipping and a decay mask matches over several steps (1e-12)', async () => {
    const want = adamReference([4])
    const got = await runPlan(fusedPlan('float64', adam(), 4), 'float64', [4], true)
    compareLogs(got.log, want.log, 1e-12)
    assert.ok(
      want.log.some((s) => s.gradNorm > MAX_NORM) && want.log.some((s) => s.gradNorm < MAX_NORM),
      'clipping is exercised',
    )
    assertClose(got.state.W.data as Float64Array, want.p.W, 1e-12, 'W')
    assertClose(got.state.b.data as Float64Array, want.p.b, 1e-12, 'b')
    assertClose(got.state[slotName('exp_avg', 'W')].data as Float64Array, want.m.W, 1e-12, 'exp_avg W')
    assertClose(got.state[slotName('exp_avg_sq', 'b')].data as Float64Array, want.v.b, 1e-12, 'exp_avg_sq b')
  })

  for (const nesterov of [false, true]) {
    it(`SGD with momentum${nesterov ? ' (Nesterov)' : ''} and clipping matches over several steps (1e-12)`, async () => {
      const hp = { momentum: 0.8, weightDecay: 0.05, nesterov }
      const buf = { W: new Float64Array(IN * OUT), b: new Float64Array(OUT) }
      const want = reference(
        (p, g, _step, lr) => {
          sgdRef(p.W, g.W, buf.W, { ...hp, lr }, true)
          sgdRef(p.b, g.b, buf.b, { ...hp, lr }, false)
        },
        [4],
      )
      const got = await runPlan(fusedPlan('float64', sgdMomentum(hp), 4), 'float64', [4], true)
      compareLogs(got.log, want.log, 1e-12)
      assertClose(got.state.W.data as Float64Array, want.p.W, 1e-12, 'W')
      assertClose(
        got.state[slotName('momentum_buffer', 'b')].data as Float64Array,
        buf.b,
        1e-12,
        'momentum b',
      )
    })
  }

  it('gradient accumulation over 4 micro-batches matches the reference and one batch of 4 rows', async () => {
    // The same 4 rows either as one batch or as 4 micro-batches of one row.
    const rows = (t: number) => Array.from({ length: 4 }, (_, k) => batch(100 * t + 10 * k, 1))
    const joined = (t: number): LinearBatch => {
      const parts = rows(t)
      return {
        X: Float64Array.from(parts.flatMap((p) => [...p.X])),
        Y: Float64Array.from(parts.flatMap((p) => [...p.Y])),
        rows: 4,
      }
    }
    const want = adamReference([1, 1, 1, 1])
    const accumulated = await runPlan(accumulationPlan('float64', adam()), 'float64', [1, 1, 1, 1], true)
    compareLogs(accumulated.log, want.log, 1e-12)
    assertClose(accumulated.state.W.data as Float64Array, want.p.W, 1e-12, 'W (4x1)')
    assertClose(
      accumulated.state[slotName('exp_avg_sq', 'W')].data as Float64Array,
      want.v.W,
      1e-12,
      'exp_avg_sq W (4x1)',
    )

    const runner = await createStepRunner(fusedPlan('float64', adam(), 4), {
      provider: 'cpu',
      intraOpThreads: 1,
    })
    runner.init(initialParams('float64'))
    for (let t = 0; t < STEPS; t++) {
      await runner.step([feeds('float64', joined(t))], {
        step: t + 1,
        lr: lrAt(SCHEDULE, t),
        maxGradNorm: MAX_NORM,
      })
    }
    const single = await runner.read()
    await runner.release()
    assertClose(
      accumulated.state.W.data as Float64Array,
      single.W.data as Float64Array,
      1e-12,
      'W: 4x1 vs 1x4',
    )
    assertClose(
      accumulated.state.b.data as Float64Array,
      single.b.data as Float64Array,
      1e-12,
      'b: 4x1 vs 1x4',
    )
  })
})

describe('loss scaling', () => {
  const adam = () =>
    adamW({ beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps, weightDecay: ADAM.weightDecay })

  it('scales the loss, accumulates scaled gradients and unscales them in the update (1e-12)', async () => {
    const want = adamReference([1, 1])
    const plan = accumulationPlan('float64', adam(), { lossScale: true, skipNonFinite: true })
    const got = await runPlan(plan, 'float64', [1, 1], true, 1024)
    compareLogs(got.log, want.log, 1e-12)
    assertClose(got.state.W.data as Float64Array, want.p.W, 1e-12, 'W')
    assertClose(got.state[slotName('exp_avg_sq', 'b')].data as Float64Array, want.v.b, 1e-12, 'exp_avg_sq b')
  })

  it('scales the loss and unscales the gradients in one fused step, which skips a non-finite one', async () => {
    const scaling = { lossScale: true, skipNonFinite: true }
    const want = adamReference([4])
    const got = await runPlan(fusedPlan('float64', adam(), 4, true, scaling), 'float64', [4], true, 1024)
    compareLogs(got.log, want.log, 1e-12)
    assertClose(got.state.W.data as Float64Array, want.p.W, 1e-12, 'W')
    assertClose(got.state[slotName('exp_avg_sq', 'b')].data as Float64Array, want.v.b, 1e-12, 'exp_avg_sq b')

    const runner = await createStepRunner(fusedPlan('float64', adam(), 4, true, scaling), {
      provider: 'cpu',
      intraOpThreads: 1,
    })
    try {
      runner.init(initialParams('float64'))
      const before = await runner.read(true)
      const poisoned = batch(2, 4)
      poisoned.Y[3] = Number.POSITIVE_INFINITY
      const r = await runner.step([feeds('float64', poisoned)], {
        step: 1,
        lr: 0.05,
        maxGradNorm: 1,
        lossScale: 8,
      })
      assert.ok(!Number.isFinite(r.gradNorm), `gradient norm ${r.gradNorm}`)
      assert.deepEqual(await runner.read(true), before, 'an infinite gradient changed nothing')
    } finally {
      await runner.release()
    }
  })

  it('leaves params and moments unchanged when a gradient is not finite, and steps again after', async () => {
    const plan = accumulationPlan('float64', adam(), { lossScale: true, skipNonFinite: true })
    const runner = await createStepRunner(plan, { provider: 'cpu', intraOpThreads: 1 })
    try {
      runner.init(initialParams('float64'))
      const input = { step: 1, lr: 0.05, maxGradNorm: MAX_NORM, lossScale: 8 }
      await runner.step([feeds('float64', batch(1, 2))], input)
      const before = await runner.read(true)
      for (const bad of [Number.POSITIVE_INFINITY, Number.NaN]) {
        const poisoned = batch(2, 2)
        poisoned.Y[3] = bad
        const r = await runner.step([feeds('float64', batch(3, 2)), feeds('float64', poisoned)], {
          ...input,
          step: 2,
        })
        assert.ok(!Number.isFinite(r.gradNorm), `gradient norm ${r.gradNorm}`)
        assert.deepEqual(await runner.read(true), before, `a ${bad} gradient changed nothing`)
      }
      await runner.step([feeds('float64', batch(3, 2))], { ...input, step: 2 })
      const after = await runner.read(true)
      assert.notDeepEqual(after.W, before.W)
      assert.notDeepEqual(after[slotName('exp_avg', 'b')], before[slotName('exp_avg', 'b')])
      await assert.rejects(runner.step([feeds('float64', batch(3, 2))], { ...input, lossScale: 0 }), {
        message: /give a finite lossScale > 0, got 0/,
      })
    } finally {
      await runner.release()
    }
  })

  it('backs the scale off on an overflow and grows it after an interval of applied steps', () => {
    const scaler = new LossScaler({ initial: 1024, growthInterval: 3 })
    const outcomes = [1, Number.NaN, 2, 3, 4, 5, Number.POSITIVE_INFINITY].map((norm) => {
      const applied = scaler.update(norm)
      return [applied, scaler.scale]
    })
    assert.deepEqual(outcomes, [
      [true, 1024],
      [false, 512],
      [true, 512],
      [true, 512],
      [true, 1024],
      [true, 1024],
      [false, 512],
    ])
    assert.equal(scaler.skipped, 2)
    scaler.restartCount()
    assert.equal(scaler.skipped, 0)
    const fixed = new LossScaler({ initial: 64, dynamic: false, growthInterval: 1 })
    assert.deepEqual(
      [fixed.update(Number.NaN), fixed.scale, fixed.update(1), fixed.scale],
      [false, 64, true, 64],
    )
  })
})

describe('host AdamW (CPU fast path)', () => {
  it('is bit-identical to the same float32 arithmetic written in TypeScript', () => {
    const n = 13 // not a multiple of 4: exercises the padded tail
    const opt = new HostAdamW([{ name: 'p', shape: [n] }], {
      beta1: 0.9,
      beta2: 0.99,
      eps: 1e-6,
      weightDecay: 0.1,
    })
    const f = Math.fround
    const p = Float32Array.from(rand(1, n))
    const g = Float32Array.from(rand(2, n))
    opt.load('p', hostTensor('float32', [n], p.slice()))
    opt.setGrad('p', hostTensor('float32', [n], g), false)
    opt.step({ step: 1, lr: 0.01 }, 0.5)
    const bc1 = 1 - 0.9
    const sqrtBc2 = Math.sqrt(1 - 0.99)
    const [stepSize, epsHat, c1, c2, decay] = [
      (0.01 * sqrtBc2) / bc1,
      1e-6 * sqrtBc2,
      (1 - 0.9) * 0.5,
      (1 - 0.99) * 0.5 * 0.5,
      1 - 0.01 * 0.1,
    ].map(f)
    const got = opt.read(true)
    for (let i = 0; i < n; i++) {
      const m = f(f(f(0.9) * 0) + f(c1 * g[i]))
      const v = f(f(f(0.99) * 0) + f(f(c2 * g[i]) * g[i]))
      const want = f(f(decay * p[i]) - f(f(stepSize * m) / f(f(Math.sqrt(v)) + epsHat)))
      assert.equal(got.p.data[i], want, `p[${i}]`)
      assert.equal(got[slotName('exp_avg', 'p')].data[i], m, `m[${i}]`)
    }
  })

  it('sums squared gradients in float64 over every param, accumulating micro-batches', () => {
    const shapes = [[13], [3, 5], [4097]]
    const opt = new HostAdamW(shapes.map((shape, i) => ({ name: `p${i}`, shape })))
    let want = 0
    shapes.forEach((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1)
      const g = Float32Array.from(rand(20 + i, n))
      opt.setGrad(`p${i}`, hostTensor('float32', shape, g), false)
      opt.setGrad(`p${i}`, hostTensor('float32', shape, g), true)
      for (const x of g) want += 4 * x * x
    })
    assertClose(opt.gradNorm(), Math.sqrt(want), 1e-12, 'grad norm')
  })

  /**
   * A gradient as the host optimizer takes it: float32, or float16 bits of gradient × a per-tensor
   * scale as the gradient graph makes them (half-gradients.ts); `value` is the gradient it stands for.
   */
  function stored(g: Float64Array, shape: number[], dtype: 'float32' | 'float16') {
    const g32 = Float32Array.from(g)
    if (dtype === 'float32')
      return { tensor: hostTensor('float32', shape, g32), scale: 1, value: Float64Array.from(g32) }
    const peak = g32.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
    const scale = Math.fround(HALF_GRADIENT_PEAK / peak)
    const bits = Uint16Array.from(g32, (x) => encodeHalf(Math.fround(x * scale)))
    const value = Float64Array.from(bits, (h) => float16ToNumber(h) / scale)
    return { tensor: hostTensor('float16', shape, bits), scale, value }
  }

  /** Steps a HostAdamW and the float64 reference on the same gradients; returns both states. */
  function hostVsReference(
    opt: HostAdamW,
    shapes: number[][],
    steps: number,
    grad: (t: number, i: number, n: number) => Float64Array,
    adam: AdamWHyper = ADAM,
  ) {
    const hp = { ...adam, lr: 0.01 }
    const ref = shapes.map((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1)
      const p = Float64Array.from(Float32Array.from(rand(50 + i, n)))
      opt.load(`p${i}`, hostTensor('float32', shape, Float32Array.from(p)))
      return { p, p0: p.slice(), m: new Float64Array(n), v: new Float64Array(n), decay: i % 2 === 0 }
    })
    for (let t = 1; t <= steps; t++) {
      let sumsq = 0
      ref.forEach((r, i) => {
        const g = stored(grad(t, i, r.p.length), shapes[i], opt.gradDtype)
        opt.setGrad(`p${i}`, g.tensor, false, g.scale)
        for (const x of g.value) sumsq += x * x
        adamWRef(
          r.p,
          g.value.map((x) => 0.5 * x),
          r.m,
          r.v,
          t,
          hp,
          r.decay,
        )
      })
      assertClose(opt.gradNorm(), Math.sqrt(sumsq), 1e-12, `step ${t} grad norm`)
      opt.step({ step: t, lr: hp.lr }, 0.5)
    }
    return { got: opt.read(true), ref }
  }

  // 13 and 15 elements share the first 48-float shard (padded to 16 each), 40 and 5 fill the second.
  const SHAPES = [[13], [3, 5], [40], [5]]
  const hostHp = { beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps, weightDecay: ADAM.weightDecay }
  const decayed = (i: number) => i % 2 === 0

  it('shards params across memories and matches the float64 reference over several steps', () => {
    const opt = new HostAdamW(
      SHAPES.map((shape, i) => ({ name: `p${i}`, shape, decay: decayed(i) })),
      { ...hostHp, shardFloats: 48 },
    )
    assert.equal(opt.param('p0').data.buffer, opt.param('p1').data.buffer)
    assert.notEqual(opt.param('p1').data.buffer, opt.param('p2').data.buffer)
    assert.equal(opt.param('p2').data.buffer, opt.param('p3').data.buffer)
    const { got, ref } = hostVsReference(opt, SHAPES, 5, (t, i, n) => rand(1000 * t + i, n))
    ref.forEach((r, i) => {
      assertClose(got[`p${i}`].data as Float32Array, r.p, 1e-5, `p${i}`)
      assertClose(got[slotName('exp_avg', `p${i}`)].data as Float32Array, r.m, 1e-5, `exp_avg p${i}`)
      assertClose(got[slotName('exp_avg_sq', `p${i}`)].data as Float32Array, r.v, 1e-5, `exp_avg_sq p${i}`)
    })
    assert.throws(
      () => new HostAdamW([{ name: 'big', shape: [7, 7] }], { shardFloats: 48 }),
      /param 'big' has 49 elements: more than one host AdamW shard holds \(48\)/,
    )
  })

  it('keeps bfloat16 moments within bfloat16 rounding of the float64 reference', () => {
    const opt = new HostAdamW(
      SHAPES.map((shape, i) => ({ name: `p${i}`, shape, decay: decayed(i) })),
      { ...hostHp, shardFloats: 48, stateDtype: 'bfloat16' },
    )
    const { got, ref } = hostVsReference(opt, SHAPES, 5, (t, i, n) => rand(1000 * t + i, n))
    ref.forEach((r, i) => {
      // A few roundings of 2^-9 relative error each; the update moves p by about lr per step.
      const delta = (got[`p${i}`].data as Float32Array).map((x, k) => x - r.p0[k])
      assertClose(
        delta,
        r.p.map((x, k) => x - r.p0[k]),
        2e-2,
        `update of p${i}`,
      )
      assertClose(got[slotName('exp_avg', `p${i}`)].data as Float32Array, r.m, 2e-2, `exp_avg p${i}`)
      assertClose(got[slotName('exp_avg_sq', `p${i}`)].data as Float32Array, r.v, 2e-2, `exp_avg_sq p${i}`)
    })
  })

  it('lets bfloat16 second moments decay by 1 - beta2 per step (stochastic rounding)', () => {
    // Round-to-nearest would keep v at its first value: 0.1% per step is under half a bfloat16 ulp.
    const n = 4096
    const adam = { ...ADAM, beta2: 0.999 }
    const opt = new HostAdamW([{ name: 'p0', shape: [n] }], { ...adam, stateDtype: 'bfloat16' })
    const steps = 200
    const { got, ref } = hostVsReference(
      opt,
      [[n]],
      steps,
      (t, _i, len) => (t === 1 ? rand(7, len) : new Float64Array(len)),
      adam,
    )
    const v = got[slotName('exp_avg_sq', 'p0')].data as Float32Array
    const ratio = v.reduce((s, x) => s + x, 0) / ref[0].v.reduce((s, x) => s + x, 0)
    assert.ok(
      Math.abs(ratio - 1) < 5e-3,
      `mean v / reference ${ratio} (round-to-nearest: ${1 / 0.999 ** (steps - 1)})`,
    )
  })

  // gradients over 12 orders of magnitude: float16 normals and subnormals after scaling
  const wideGradient = (t: number, i: number, n: number) =>
    rand(1000 * t + i, n).map((x, k) => x * 10 ** -((k * 7 + t) % 12))

  for (const stateDtype of ['float32', 'bfloat16'] as const) {
    it(`reads float16 gradients as the values they stand for (${stateDtype} moments)`, () => {
      const opt = new HostAdamW(
        SHAPES.map((shape, i) => ({ name: `p${i}`, shape, decay: decayed(i) })),
        { ...hostHp, shardFloats: 48, stateDtype, gradDtype: 'float16' },
      )
      assert.equal(opt.gradBuffer('p1').dtype, 'float16')
      const { got, ref } = hostVsReference(opt, SHAPES, 5, wideGradient)
      const tol = stateDtype === 'float32' ? 1e-5 : 2e-2
      ref.forEach((r, i) => {
        const delta = (got[`p${i}`].data as Float32Array).map((x, k) => x - r.p0[k])
        assertClose(
          delta,
          r.p.map((x, k) => x - r.p0[k]),
          tol,
          `update of p${i}`,
        )
        assertClose(got[slotName('exp_avg', `p${i}`)].data as Float32Array, r.m, tol, `exp_avg p${i}`)
      })
    })
  }

  it('decodes every finite float16 exactly, sign included', () => {
    const bits = Uint16Array.from({ length: 2 ** 16 }, (_, h) => h).filter((h) => (h & 0x7c00) !== 0x7c00)
    const n = bits.length
    const opt = new HostAdamW([{ name: 'p', shape: [n] }], { beta1: 0.5, gradDtype: 'float16' })
    opt.load('p', hostTensor('float32', [n], new Float32Array(n)))
    opt.setGrad('p', hostTensor('float16', [n], bits), false, 2 ** -20)
    const values = Float64Array.from(bits, (h) => float16ToNumber(h) * 2 ** 20)
    assertClose(opt.gradNorm(), Math.sqrt(values.reduce((a, x) => a + x * x, 0)), 1e-12, 'grad norm')
    opt.step({ step: 1, lr: 0 }, 1)
    // m = (1 − β1)·g = g / 2: exact in float32 for every decoded value
    const m = opt.read(true)[slotName('exp_avg', 'p')].data as Float32Array
    // (=== : the update adds β1·0, which makes −0 a +0)
    for (let k = 0; k < n; k++) assert.ok(m[k] === values[k] / 2, `bits 0x${bits[k].toString(16)}: ${m[k]}`)
  })

  it('adds float16 micro-batches of different scales within float16 rounding of their sum', () => {
    const n = 1000
    const opt = new HostAdamW([{ name: 'p', shape: [n] }], { beta1: 0, gradDtype: 'float16' })
    opt.load('p', hostTensor('float32', [n], new Float32Array(n)))
    const a = stored(rand(31, n), [n], 'float16')
    const b = stored(
      rand(32, n).map((x) => x * 1e-3),
      [n],
      'float16',
    )
    opt.setGrad('p', a.tensor, false, a.scale)
    opt.setGrad('p', b.tensor, true, b.scale)
    const sum = a.value.map((x, k) => x + b.value[k])
    opt.step({ step: 1, lr: 0 }, 1)
    const m = opt.read(true)[slotName('exp_avg', 'p')].data as Float32Array
    const peak = sum.reduce((p, x) => Math.max(p, Math.abs(x)), 0)
    for (let k = 0; k < n; k++) assert.ok(Math.abs(m[k] - sum[k]) <= peak * 2 ** -10, `element ${k}`)
    assertClose(opt.gradNorm(), globalNormRef([sum]), 2e-3, 'grad norm')
  })

  it('trains like the in-graph AdamW (float32), with accumulation and clipping', async () => {
    const hp = { beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps, weightDecay: ADAM.weightDecay }
    const graph = await runPlan(accumulationPlan('float32', adamW(hp)), 'float32', [2, 2], true)
    const m = linearModel('float32', 'rows')
    const grads = buildGradStep(m.g, { loss: m.loss, params: m.params, metrics: m.metrics })
    const host = await runPlan({ grads, hostAdamW: hp, clip: true }, 'float32', [2, 2], true)
    compareLogs(host.log, graph.log, 1e-5)
    for (const name of ['W', 'b', slotName('exp_avg', 'W'), slotName('exp_avg_sq', 'b')]) {
      assertClose(host.state[name].data as Float32Array, graph.state[name].data as Float32Array, 1e-5, name)
    }
  })

  it('trains within float16 rounding of float32 gradients when the graph outputs float16 ones', async () => {
    const hp = { beta1: ADAM.beta1, beta2: ADAM.beta2, eps: ADAM.eps, weightDecay: ADAM.weightDecay }
    const planOf = (gradientDtype: 'float32' | 'float16'): StepPlan => {
      const m = linearModel('float32', 'rows')
      const grads = buildGradStep(m.g, { loss: m.loss, params: m.params, metrics: m.metrics, gradientDtype })
      return { grads, hostAdamW: hp, clip: true }
    }
    const half = planOf('float16')
    // the runner's optimizer takes float16 gradients only (setGrad checks the dtype of every output)
    assert.equal('grads' in half && half.grads.gradientDtype, 'float16')
    const full = await runPlan(planOf('float32'), 'float32', [2, 2], true)
    const host = await runPlan(half, 'float32', [2, 2], true)
    compareLogs(host.log, full.log, 2e-3)
    for (const name of ['W', 'b', slotName('exp_avg', 'W')]) {
      assertClose(host.state[name].data as Float32Array, full.state[name].data as Float32Array, 2e-3, name)
    }
  })
})

describe('step errors', () => {
  it('are AppErrors that name the problem', async () => {
    const runner = await createStepRunner(fusedPlan('float64', adamW(), 2), { provider: 'cpu' })
    assert.throws(
      () => runner.init({ W: initialParams('float64').W }),
      /missing initial value of trainable param 'b'/,
    )
    assert.throws(
      () => runner.init(initialParams('float32')),
      /param 'W' expects float64 \[3, 4\], got float32 \[3, 4\]/,
    )
    runner.init(initialParams('float64'))
    await assert.rejects(
      runner.step([feeds('float64', batch(1, 2))], { step: 1, lr: 0.1 }),
      /give maxGradNorm > 0/,
    )
    await assert.rejects(runner.step([], { step: 1, lr: 0.1, maxGradNorm: 1 }), /at least one micro-batch/)
    await assert.rejects(
      runner.step([feeds('float64', batch(1, 3))], { step: 1, lr: 0.1, maxGradNorm: 1 }),
      (err: unknown) =>
        err instanceof AppError &&
        err.code === 'shape_mismatch' &&
        /'X' expects dims \[2, 3\], got \[3, 3\]/.test(err.message),
    )
    await runner.release()
    const m = linearModel('float64', 2)
    const grads = buildGradStep(m.g, { loss: m.loss, params: m.params })
    await assert.rejects(
      createStepRunner({ grads, hostAdamW: {} }, { provider: 'cpu' }),
      /float32 params on the cpu provider, got float64/,
    )
  })
})

describe('stacked updates', () => {
  // Three decayed [3, 4] params (a stack of 2 and one left alone), an undecayed [3, 4] and a [4].
  const PARAMS = [
    { name: 'a', shape: [3, 4] },
    { name: 'b', shape: [4], decay: false },
    { name: 'c', shape: [3, 4] },
    { name: 'd', shape: [3, 4], decay: false },
    { name: 'e', shape: [3, 4] },
  ]

  async function runUpdate(stack: number | undefined, optimizer: Optimizer, gradScale: number) {
    const step = buildUpdateStep({
      params: PARAMS,
      dtype: 'float64',
      optimizer,
      clip: true,
      skipNonFinite: true,
      stackParams: stack,
    })
    let seed = 1
    const values = (shape: number[]) =>
      Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
        seed = (seed * 48271) % 2147483647
        return seed / 2147483647 - 0.5
      })
    const feeds: Record<string, HostTensor> = {
      ...optimizer.feeds('float64', { step: 3, lr: 0.01 }),
      [STEP_INPUTS.gradScale]: hostTensor('float64', [], Float64Array.of(gradScale)),
      [STEP_INPUTS.maxGradNorm]: hostTensor('float64', [], Float64Array.of(1)),
    }
    for (const p of PARAMS) {
      feeds[p.name] = hostTensor('float64', p.shape, values(p.shape))
      feeds[accumulatorName(p.name)] = hostTensor('float64', p.shape, values(p.shape))
    }
    for (const slot of step.slots.toSorted((x, y) => x.name.localeCompare(y.name))) {
      const shape = PARAMS.find((p) => p.name === slot.param)!.shape
      feeds[slot.name] = hostTensor('float64', shape, values(shape).map(Math.abs))
    }
    const session = await createGraphSession(step.graph.serialize(), { provider: 'cpu', name: 'update' })
    const out = await session.run(feeds)
    await session.release()
    return { out, feeds, step }
  }

  for (const [name, optimizer] of [
    ['AdamW', () => adamW({ weightDecay: 0.1 })],
    ['SGD', () => sgdMomentum({ momentum: 0.9, weightDecay: 0.1 })],
  ] as const) {
    it(`${name}: same-shaped params updated in stacks give the per-param update and state names`, async () => {
      const alone = await runUpdate(undefined, optimizer(), 0.5)
      const stacked = await runUpdate(2, optimizer(), 0.5)
      assert.deepEqual(stacked.step.stateOutputs, alone.step.stateOutputs)
      const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name)
      assert.deepEqual(stacked.step.slots.toSorted(byName), alone.step.slots.toSorted(byName))
      assert.ok(
        stacked.step.graph.serialize().model.length !== alone.step.graph.serialize().model.length,
        'the graph is stacked',
      )
      for (const [output, value] of Object.entries(alone.out)) {
        const got = stacked.out[output].data as Float64Array
        assert.ok(maxRelDiff(got, value.data as Float64Array) < 1e-12, output)
      }
      // a non-finite gradient norm leaves every param and slot of a stack as it was
      const skipped = await runUpdate(2, optimizer(), Number.POSITIVE_INFINITY)
      for (const [output, state] of Object.entries(skipped.step.stateOutputs)) {
        assert.deepEqual(skipped.out[output].data, skipped.feeds[state].data, output)
      }
    })
  }
})
