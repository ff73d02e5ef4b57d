/**
 * The GPU check (bundled by `bash bench/gpu-check.sh --prepare`, run by `bash bench/gpu-check.sh` on a
 * machine with a GPU). Prints one JSON object: the providers found, where onnxruntime places each
 * node of the training-step graphs on WebGPU, CPU vs WebGPU equality over a few AdamW steps, and
 * step times and tokens/s on each provider (CUDA too when its libraries are installed), for engine
 * graphs and for the model layer's Policy (training step and batched decoding of a tiny Llama).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  adamW,
  buildTrainStep,
  createStepRunner,
  misplacedNodes,
  neg,
  nodePlacement,
  type Provider,
  providerStatuses,
  reduceMean,
  resolveProvider,
} from '../../src/engine/index.ts'
import type { PolicyLoss } from '../../src/model/graphs.ts'
import { Policy } from '../../src/model/policy.ts'
import { Random } from '../../src/model/random.ts'
import { makeTinyModel, type TinyPreset } from '../../src/model/tiny.ts'
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

const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }

/** The Policy as runs use it: SFT steps on 8 rows x 256 tokens, then greedy decoding of 8 x 32 tokens. */
async function policyTiming(providers: Provider[], preset: TinyPreset) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpu-check-policy-'))
  const out: Record<string, unknown> = { preset }
  try {
    await makeTinyModel(dir, { seed: 1, preset })
    for (const provider of providers) {
      const policy = await Policy.load(dir, { provider })
      try {
        const rng = new Random(0)
        const ids = () => Array.from({ length: 128 }, () => rng.nextUint32() % policy.config.vocab_size)
        const rows = Array.from({ length: 8 }, () => ({ prompt: ids(), response: ids() }))
        const losses: number[] = []
        const times: number[] = []
        for (let i = 0; i < 6; i++) {
          const t0 = performance.now()
          losses.push((await policy.trainStep({ rows }, { lr: 1e-4, loss: sft })).loss)
          times.push(performance.now() - t0)
        }
        const warm = times.slice(2).sort((a, b) => a - b)
        const t0 = performance.now()
        const gens = await policy.generate(Array(8).fill('Once upon a time'), {
          maxNewTokens: 32,
          temperature: 0,
          topP: 1,
          topK: 0,
          seed: 0,
        })
        const decodeS = (performance.now() - t0) / 1000
        out[provider] = {
          train_step_ms: +warm[warm.length >> 1].toFixed(1),
          losses,
          decode_tokens_per_s: Math.round(gens.reduce((a, g) => a + g.tokens.length, 0) / decodeS),
        }
      } catch (err) {
        out[provider] = { error: String((err as Error).message) }
      } finally {
        await policy.dispose()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
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
result.policy = await policyTiming(working, SMALL ? 'tiny' : '10m')
result.cuda = statuses.find((s) => s.provider === 'cuda')
console.log(JSON.stringify(result, null, 1))
