/**
 * The GPU check (bundled by `bash bench/gpu-check.sh --prepare`, run by `bash bench/gpu-check.sh` on a
 * machine with a GPU). Prints one JSON object: the providers found, where onnxruntime places each
 * node of the training-step graphs on WebGPU, CPU vs WebGPU equality over a few AdamW steps, and
 * step times and tokens/s on each provider (CUDA too when its libraries are installed).
 */
import os from 'node:os'
import {
  adamW,
  buildTrainStep,
  createStepRunner,
  misplacedNodes,
  nodePlacement,
  type Provider,
  providerStatuses,
  resolveProvider,
} from '../../src/engine/index.ts'
import { maxRelDiff } from '../compare.ts'
import {
  BENCH_MLP,
  BENCH_TRANSFORMER,
  type BenchModel,
  fusedAdamWPlan,
  mlp,
  transformerBlock,
} from '../models.ts'

/** --small: every graph at test size (a smoke test of this script, e.g. under a software Vulkan driver). */
const SMALL = process.argv.includes('--small')
const STEPS_COMPARED = 3
const STEPS_TIMED = 10

async function placement(make: () => BenchModel) {
  const m = make()
  const built = buildTrainStep(m.g, { loss: m.loss, params: m.params, optimizer: adamW(), clip: true })
  const p = await nodePlacement(built.graph.serialize(), 'webgpu')
  const misplaced = misplacedNodes(p, 'webgpu')
  return {
    nodes_per_provider: Object.fromEntries(Object.entries(p).map(([ep, v]) => [ep, v.count])),
    all_on_gpu: misplaced.length === 0,
    not_on_gpu: misplaced,
  }
}

/** Runs `steps` AdamW steps; returns losses, grad norms, final params and the median step time. */
async function train(provider: Provider, make: () => BenchModel, steps: number) {
  const m = make()
  const runner = await createStepRunner(fusedAdamWPlan(m), { provider })
  runner.init(m.init)
  const log: number[] = []
  const times: number[] = []
  for (let t = 1; t <= steps; t++) {
    const t0 = performance.now()
    const r = await runner.step([m.batch], { step: t, lr: 1e-3, maxGradNorm: 1 })
    times.push(performance.now() - t0)
    log.push(r.loss, r.gradNorm)
  }
  const params = await runner.read(true)
  const location = runner.location(m.params[0].name)
  await runner.release()
  const warm = times.slice(2).sort((a, b) => a - b)
  return {
    log,
    params,
    location,
    stepMs: warm[warm.length >> 1] ?? times[times.length - 1],
    tokens: m.tokens,
  }
}

async function compare(make: () => BenchModel) {
  const cpu = await train('cpu', make, STEPS_COMPARED)
  const gpu = await train('webgpu', make, STEPS_COMPARED)
  let worstParam = 0
  let worstName = ''
  for (const name of Object.keys(cpu.params)) {
    const e = maxRelDiff(gpu.params[name].data as Float32Array, cpu.params[name].data as Float32Array)
    if (e > worstParam) [worstParam, worstName] = [e, name]
  }
  return {
    steps: STEPS_COMPARED,
    state_location_on_webgpu: gpu.location,
    loss_and_grad_norm_cpu: cpu.log,
    loss_and_grad_norm_webgpu: gpu.log,
    max_rel_diff_loss_grad_norm: maxRelDiff(gpu.log, cpu.log),
    max_rel_diff_params_and_moments: worstParam,
    worst_tensor: worstName,
    equal_within_1e_3: maxRelDiff(gpu.log, cpu.log) < 1e-3 && worstParam < 1e-3,
  }
}

async function timing(providers: Provider[], make: () => BenchModel) {
  const out: Record<string, unknown> = {}
  for (const provider of providers) {
    try {
      const r = await train(provider, make, STEPS_TIMED)
      out[provider] = {
        step_ms: +r.stepMs.toFixed(2),
        tokens_per_s: Math.round(r.tokens / (r.stepMs / 1000)),
      }
    } catch (err) {
      out[provider] = { error: String((err as Error).message) }
    }
  }
  return out
}

const statuses = await providerStatuses()
const result: Record<string, unknown> = {
  node: process.version,
  host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model },
  providers: statuses,
  auto_picks: await resolveProvider('auto'),
}
const working = statuses.filter((s) => s.available).map((s) => s.provider)
const smallDims = { batch: 2, seq: 32, hidden: 64, heads: 4, ffn: 128 }
const blockDims = SMALL ? smallDims : BENCH_TRANSFORMER
const mlpDims = SMALL ? { batch: 16, inFeatures: 64, hidden: 256 } : BENCH_MLP
const small = () => transformerBlock(smallDims)
const block = () => transformerBlock(blockDims)
const mlpModel = () => mlp(mlpDims)

if (working.includes('webgpu')) {
  result.placement_webgpu = { transformer_block: await placement(block), mlp: await placement(mlpModel) }
  result.equality_cpu_vs_webgpu = {
    transformer_block_small: await compare(small),
    mlp: await compare(mlpModel),
  }
} else {
  result.webgpu_skipped = statuses.find((s) => s.provider === 'webgpu')?.detail
}
result.step_time = {
  note: 'fused AdamW step with clipping, median of the last 8 of 10 steps; state device-resident on webgpu',
  transformer_block: { dims: blockDims, ...(await timing(working, block)) },
  mlp: { dims: mlpDims, ...(await timing(working, mlpModel)) },
}
result.cuda = statuses.find((s) => s.provider === 'cuda')
console.log(JSON.stringify(result, null, 1))
