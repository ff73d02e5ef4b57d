import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { maxRelDiff } from '../../bench/compare.ts'
import { summarizeProfiles } from '../../bench/gpu/profile.ts'
import {
  BENCH_TRANSFORMER,
  type BenchModel,
  fusedAdamWPlan,
  mlp,
  transformerBlock,
} from '../../bench/models.ts'
import {
  adamW,
  add,
  buildMicroStep,
  buildTrainStep,
  buildUpdateStep,
  createGraphSession,
  createStepRunner,
  DeviceState,
  Graph,
  hostTensor,
  matMul,
  misplacedNodes,
  nodePlacement,
  type Provider,
  type StepPlan,
  setSessionDefaults,
} from '../../src/engine/index.ts'
import { itPassesUnderSoftwareVulkan, webgpuTestMode } from '../helpers/providers.ts'

const { skip, rerun, reason } = await webgpuTestMode('WebGPU tests')

const SMALL = { ...BENCH_TRANSFORMER, batch: 2, seq: 8, hidden: 16, heads: 2, ffn: 32 }
const STEPS = 3

function accumulationPlan(m: BenchModel): StepPlan {
  const micro = buildMicroStep(m.g, { loss: m.loss, params: m.params })
  const update = buildUpdateStep({
    params: m.params.map((p) => ({ name: p.name, shape: p.tensor.shape as number[], decay: p.decay })),
    dtype: 'float32',
    optimizer: adamW({ weightDecay: 0.1 }),
    clip: true,
  })
  return { micro, update }
}

/** STEPS AdamW steps; returns per-step loss and grad norm, final params and where a param lived. */
async function train(
  provider: Provider,
  make: () => BenchModel,
  plan: (m: BenchModel) => StepPlan,
  micro: number,
) {
  const m = make()
  const runner = await createStepRunner(plan(m), { provider })
  runner.init(m.init)
  const log: number[] = []
  for (let t = 1; t <= STEPS; t++) {
    const r = await runner.step(Array(micro).fill(m.batch), { step: t, lr: 0.01, maxGradNorm: 0.5 })
    log.push(r.loss, r.gradNorm)
  }
  const location = runner.location(m.params[0].name)
  const params = await runner.read(true)
  await runner.release()
  return { log, params, location }
}

describe('WebGPU provider', { skip }, () => {
  if (rerun) return itPassesUnderSoftwareVulkan(fileURLToPath(import.meta.url), 4)

  before(() => console.log(`# WebGPU: ${reason}`))

  for (const [name, plan, micro] of [
    ['one fused step graph', fusedAdamWPlan, 1],
    ['gradient accumulation (2 micro-batches)', accumulationPlan, 2],
  ] as const) {
    it(`trains a transformer block like the CPU, state kept on the device: ${name}`, async () => {
      const make = () => transformerBlock(SMALL)
      const cpu = await train('cpu', make, plan, micro)
      const gpu = await train('webgpu', make, plan, micro)
      assert.equal(gpu.location, 'gpu-buffer')
      assert.equal(cpu.location, 'cpu')
      assert.ok(maxRelDiff(gpu.log, cpu.log) < 1e-4, `loss/grad norm: ${gpu.log} vs ${cpu.log}`)
      for (const key of Object.keys(cpu.params)) {
        const e = maxRelDiff(gpu.params[key].data as Float32Array, cpu.params[key].data as Float32Array)
        assert.ok(e < 1e-4, `${key}: relative difference ${e}`)
      }
    })
  }

  it('moves state tensors onto the device once, and reads them back unchanged', async () => {
    const state = new DeviceState('webgpu')
    const values = Float32Array.from({ length: 6 }, (_, i) => i / 7 - 0.3)
    state.set('w', hostTensor('float32', [2, 3], values))
    assert.equal(state.location('w'), 'cpu')
    await state.upload()
    assert.equal(state.location('w'), 'gpu-buffer')
    await state.upload()
    const back = (await state.read(['w'])).w
    assert.deepEqual(back.dims, [2, 3])
    assert.deepEqual(back.data, values)
    await state.release()
  })

  it('fetching some outputs keeps state outputs on the device and the rest on the host, whatever their order', async () => {
    // Outputs: a host output, the state output, another host output. onnxruntime-node places the
    // fetched outputs by position; fetching `late` without `early` would swap their memories.
    const g = new Graph({ name: 'order' })
    const x = g.input('x', 'float32', [2])
    const w = g.input('w', 'float32', [2])
    g.output(add(g, x, x), 'early')
    g.output(add(g, w, x), 'w_next')
    g.output(add(g, x, w), 'late')
    const session = await createGraphSession(g.serialize(), {
      provider: 'webgpu',
      stateOutputs: { w_next: 'w' },
    })
    const state = new DeviceState('webgpu')
    state.set('w', hostTensor('float32', [2], Float32Array.of(1, 2)))
    const x1 = { x: hostTensor('float32', [2], Float32Array.of(10, 20)) }
    for (let run = 0; run < 2; run++) {
      const out = await session.runWithState(state, x1, ['late'])
      assert.deepEqual(Object.keys(out), ['late'])
      assert.deepEqual([...out.late.data], run === 0 ? [11, 22] : [21, 42])
      assert.equal(state.location('w'), 'gpu-buffer')
    }
    // A GPU buffer a session made is freed before the session: the other way round crashes onnxruntime-node.
    await state.release()
    await session.release()
  })

  it('places every node of an MLP training step on the GPU', async () => {
    const m = mlp({ batch: 4, inFeatures: 8, hidden: 16 })
    const step = buildTrainStep(m.g, { loss: m.loss, params: m.params, optimizer: adamW(), clip: true })
    const placement = await nodePlacement(step.graph.serialize(), 'webgpu')
    assert.deepEqual(misplacedNodes(placement, 'webgpu'), [])
    assert.ok(placement.WebGpuExecutionProvider.count > 50)
  })

  it("summarizes onnxruntime's profile of a session: GPU time and host dispatch per op", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'webgpu-profile-'))
    const g = new Graph({ name: 'profiled' })
    const x = g.input('x', 'float32', [64, 64])
    g.output(add(g, matMul(g, x, x), x), 'y')
    setSessionDefaults({ profilePrefix: `${dir}/` })
    try {
      const session = await createGraphSession(g.serialize(), { provider: 'webgpu', name: 'profiled' })
      const feeds = { x: hostTensor('float32', [64, 64], new Float32Array(64 * 64).fill(0.5)) }
      for (let i = 0; i < 3; i++) await session.run(feeds)
      await session.release()
      const { profiled } = summarizeProfiles(dir, 3)
      assert.equal(profiled.runs, 2)
      assert.ok(profiled.kernels_per_run >= 1) // onnxruntime may fuse the two nodes into a Gemm
      assert.ok(Object.keys(profiled.by_op).some((op) => op === 'MatMul' || op === 'Gemm'))
      assert.ok(profiled.host_dispatch_ms_per_run > 0)
      // lavapipe offers timestamp queries; a driver without them leaves the GPU time out
      if (profiled.gpu_ms_per_run !== undefined) {
        const byOp = Object.values(profiled.by_op).reduce((a, b) => a + b, 0)
        assert.ok(profiled.gpu_ms_per_run > 0 && Math.abs(byOp - profiled.gpu_ms_per_run) < 0.05)
      }
    } finally {
      setSessionDefaults({ profilePrefix: undefined })
      await rm(dir, { recursive: true, force: true })
    }
  })
})
