/**
 * The GPU check (bundled by `bash bench/gpu-check.sh --prepare`, run by `bash bench/gpu-check.sh` on a
 * machine with a GPU). Prints one JSON object:
 *   - the providers found and the GPU;
 *   - `matmul`: float32 matrix throughput measured here, through onnxruntime's WebGPU provider (inputs
 *     resident on the device) and, when a Python with torch and CUDA exists, through cuBLAS; and the
 *     same in float16 (`matmul_float16`) when the `train-fp16` mode runs;
 *   - `placement`: where onnxruntime puts each node of the policy's graphs on WebGPU (training
 *     step fused and micro-step, full and LoRA, the AdamW update, decoding with the KV cache on the device);
 *   - `equality`: CPU vs WebGPU over a few DPO steps (full and LoRA: losses, gradient norms, weights
 *     and moments after the first and the third step, the tensors that differ most) and greedy
 *     generation; `scatter_add_repeats`: the embedding gradient's scatter-add with repeated rows;
 *     `weight_gradient_product`: dYᵀ·X (Gemm, transA) at the 10m LM head's shape against float64;
 *   - `shapes`: per model shape (the 10m and 50m presets, Qwen2.5-0.5B's shape with random weights)
 *     the policy's DPO step (forward, backward, AdamW) and batched greedy decoding on each GPU
 *     provider: step time, tokens/s, bytes moved per step and per token, the step's model FLOP/s
 *     against the measured matmul peak, and PyTorch eager CUDA on the same folder and shapes;
 *     `train-fp16`: the same step in mixed precision (the policy's `precision: 'float16'`, WebGPU
 *     only) against PyTorch's autocast float16 with a gradient scaler, read against the float16 peak;
 *     `profile`: onnxruntime's profile of WebGPU steps, GPU and host-dispatch time per op type.
 * Work stops at `--budget-s` (what is left is reported as skipped), so one run fits the machine time;
 * the 0.5B shape, which the targets are about, goes first. With GPU_CHECK_OUT set, the results so far
 * are rewritten there after every measurement, so a run killed midway still leaves them.
 *
 *   node bench/gpu/check.ts [--small] [--shapes qwen2.5-0.5b,50m,10m] [--modes train-full,profile,train-fp16,train-lora,decode]
 *     [--equality 10m] [--python python3] [--budget-s 420]
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import {
  adamW,
  buildTrainStep,
  buildUpdateStep,
  createGraphSession,
  DeviceState,
  decoderTrainFlopsPerToken,
  Graph,
  gemm,
  type HostTensor,
  hostTensor,
  matMul,
  misplacedNodes,
  nodePlacement,
  type Provider,
  providerStatuses,
  resolveProvider,
  type SerializedGraph,
  scatterNDAdd,
  setSessionDefaults,
  slice,
  transfersBetween,
  transferTotals,
  WEBGPU_STACK,
} from '../../src/engine/index.ts'
import { toFloat16Bits } from '../../src/engine/onnx/float16.ts'
import { parameterCount } from '../../src/model/config.ts'
import { buildPolicyMicroStep, buildPolicyObjective, type ModelTensors } from '../../src/model/graphs.ts'
import { buildDecodeGraph } from '../../src/model/kv-cache.ts'
import { loadModel } from '../../src/model/load.ts'
import { initAdapters } from '../../src/model/lora.ts'
import { Policy } from '../../src/model/policy.ts'
import type { Precision } from '../../src/model/precision.ts'
import { Random } from '../../src/model/random.ts'
import { makeTinyModel, type TinyPreset } from '../../src/model/tiny.ts'
import { maxRelDiff } from '../compare.ts'
import { type BenchJob, DECODE, DPO, dpoBatch, dpoLoss, runTorch, type TorchResult } from '../dpo-step.ts'
import { LORA_ALL_LINEAR as LORA, QWEN2_05B } from '../real-shapes.ts'
import { summarizeProfiles } from './profile.ts'

const { values: args } = parseArgs({
  options: {
    /** Everything at test size: a smoke test of this script, e.g. under the software Vulkan driver. */
    small: { type: 'boolean', default: false },
    shapes: { type: 'string', default: 'qwen2.5-0.5b,50m,10m' },
    /** 'profile': WebGPU steps under onnxruntime's profiler, GPU time per op type. */
    modes: { type: 'string', default: 'train-full,profile,train-fp16,train-lora,decode' },
    python: { type: 'string', default: 'python3' },
    /** The preset CPU and WebGPU are compared on (default: 10m, tiny with --small). */
    equality: { type: 'string' },
    'budget-s': { type: 'string', default: '420' },
  },
})
const SMALL = args.small
const started = performance.now()
const budgetLeft = () => Number(args['budget-s']) - (performance.now() - started) / 1000

/** Sizes of every measurement; --small shrinks them to what a software driver runs in seconds. */
const SIZE = SMALL
  ? {
      shapes: ['tiny'],
      train: { rows: 4, seq: 32, prompt: 16 },
      decode: { batch: 2, newTokens: 8 },
      matmul: 256,
      equality: args.equality ?? 'tiny',
      warmup: 1,
      steps: 2,
    }
  : {
      shapes: args.shapes.split(',').filter(Boolean),
      train: { rows: DPO.rows, seq: DPO.seq, prompt: DPO.prompt },
      decode: { batch: 8, newTokens: DECODE.newTokens },
      matmul: 8192,
      equality: args.equality ?? '10m',
      warmup: 2,
      steps: 4,
    }
const MODES = args.modes.split(',')
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** A model folder of a preset, or of Qwen2.5-0.5B's shape (24 layers, random weights). */
async function modelFolder(root: string, shape: string) {
  const dir = path.join(root, shape)
  const info =
    shape === 'qwen2.5-0.5b'
      ? await makeTinyModel(dir, { seed: 1, overrides: { ...QWEN2_05B, num_hidden_layers: 24 } })
      : await makeTinyModel(dir, { seed: 1, preset: shape as TinyPreset })
  return { dir, config: info.config }
}

function gpuName(): string | undefined {
  try {
    return execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
      {
        encoding: 'utf8',
      },
    ).trim()
  } catch {
    return undefined
  }
}

/**
 * (n, n) x (n, n) on WebGPU in float32 or float16 with both operands resident on the device and the
 * product kept there; one element comes back per run, which also waits for the GPU to finish it.
 */
async function webgpuMatmul(n: number, dtype: Precision) {
  const g = new Graph({ name: 'matmul' })
  const y = matMul(g, g.input('a', dtype, [n, n]), g.input('b', dtype, [n, n]))
  g.output(y, 'y')
  g.output(slice(g, y, { starts: [0, 0], ends: [1, 1], axes: [0, 1] }), 'corner')
  const session = await createGraphSession(g.serialize(), {
    provider: 'webgpu',
    name: 'matmul',
    stateOutputs: { y: 'y' },
  })
  const state = new DeviceState('webgpu')
  const rng = new Random(0)
  for (const name of ['a', 'b']) {
    const data = Float32Array.from({ length: n * n }, () => rng.nextUint32() / 2 ** 32 - 0.5)
    state.set(
      name,
      dtype === 'float16'
        ? { dtype, dims: [n, n], data: Uint16Array.from(data, toFloat16Bits) }
        : { dtype, dims: [n, n], data },
    )
  }
  await state.upload()
  const times: number[] = []
  for (let i = 0; i < 2 + 5; i++) {
    const t0 = performance.now()
    await session.runWithState(state, {})
    if (i >= 2) times.push(performance.now() - t0)
  }
  await session.release()
  await state.release()
  return { n, dtype, gflops: Math.round((2 * n ** 3) / (median(times) / 1000) / 1e9) }
}

/**
 * ScatterND with reduction add, as the embedding's gradient uses it, with many repeated rows (2048
 * updates into 256 rows), on the CPU and on WebGPU against a float64 sum: repeated indices make the
 * GPU's kernel add into the same row from many threads at once.
 */
async function scatterAddRepeats() {
  const [rows, updates, width] = SMALL ? [16, 64, 32] : [256, 2048, 896]
  const g = new Graph({ name: 'scatter_add' })
  const y = scatterNDAdd(
    g,
    g.input('data', 'float32', [rows, width]),
    g.input('indices', 'int64', [updates, 1]),
    g.input('updates', 'float32', [updates, width]),
  )
  g.output(y, 'y')
  const rng = new Random(5)
  const index = Array.from({ length: updates }, () => rng.nextUint32() % rows)
  const values = Float32Array.from({ length: updates * width }, () => rng.nextUint32() / 2 ** 32 - 0.5)
  const exact = new Float64Array(rows * width)
  index.forEach((r, u) => {
    for (let j = 0; j < width; j++) exact[r * width + j] += values[u * width + j]
  })
  const feeds = {
    data: hostTensor('float32', [rows, width], new Float32Array(rows * width)),
    indices: hostTensor('int64', [updates, 1], BigInt64Array.from(index, BigInt)),
    updates: hostTensor('float32', [updates, width], values),
  }
  const out = await againstFloat64(g, feeds, exact)
  return { rows, updates, width, ...out }
}

/** One output `y` of g on the CPU and on WebGPU, each against the exact float64 result. */
async function againstFloat64(g: Graph, feeds: Record<string, HostTensor>, exact: Float64Array) {
  const out: Record<string, number> = {}
  for (const provider of ['cpu', 'webgpu'] as const) {
    const session = await createGraphSession(g.serialize(), { provider, name: g.name })
    const { y } = await session.run(feeds)
    await session.release()
    out[`max_rel_diff_${provider}`] = maxRelDiff(y.data as Float32Array, exact)
  }
  return { ...out, equal: out.max_rel_diff_webgpu < 1e-5 }
}

/**
 * The weight-gradient product dW = dYᵀ·X (Gemm with transA) at the 10m preset's LM head (2,048 token
 * rows, 4,096 vocabulary rows, 256 wide): the tied embedding's gradient differed on a real GPU.
 */
async function weightGradientProduct() {
  const [n, v, h] = SMALL ? [64, 128, 32] : [2048, 4096, 256]
  const g = new Graph({ name: 'weight_gradient' })
  g.output(
    gemm(g, g.input('dy', 'float32', [n, v]), g.input('x', 'float32', [n, h]), undefined, { transA: true }),
    'y',
  )
  const rng = new Random(6)
  const uniform = (count: number) =>
    Float32Array.from({ length: count }, () => rng.nextUint32() / 2 ** 32 - 0.5)
  const [dy, x] = [uniform(n * v), uniform(n * h)]
  const exact = new Float64Array(v * h)
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < v; i++) {
      const d = dy[r * v + i]
      for (let j = 0; j < h; j++) exact[i * h + j] += d * x[r * h + j]
    }
  }
  const feeds = { dy: hostTensor('float32', [n, v], dy), x: hostTensor('float32', [n, h], x) }
  return { n, v, h, ...(await againstFloat64(g, feeds, exact)) }
}

/** Where each node of a graph lands on WebGPU, and the nodes that did not land there. */
async function placed(graph: SerializedGraph) {
  const p = await nodePlacement(graph, 'webgpu')
  const misplaced = misplacedNodes(p, 'webgpu')
  return {
    nodes_per_provider: Object.fromEntries(Object.entries(p).map(([ep, v]) => [ep, v.count])),
    all_on_gpu: misplaced.length === 0,
    not_on_gpu: misplaced,
  }
}

/** The policy's WebGPU graphs, built as Policy builds them, on one model folder. */
async function placement(dir: string) {
  const model = await loadModel(dir)
  const bind = { frozen: 'inputs' as const, fusedMatMul: false }
  const pairs = SIZE.train.rows / 2
  const loss = dpoLoss(pairs, DPO.beta)
  const full: ModelTensors = { cfg: model.config, weights: model.weights }
  const lora: ModelTensors = { ...full, lora: { spec: LORA, adapters: initAdapters(model.config, LORA, 0) } }
  const micro = buildPolicyMicroStep(full, { ...bind, trainable: 'all', loss })
  // As the policy builds them on WebGPU: one batch runs as one fused graph, several accumulate.
  const update = { optimizer: adamW(), clip: true, stackParams: WEBGPU_STACK }
  const fused = buildPolicyObjective(full, { ...bind, trainable: 'all', loss })
  return {
    train_step_full_fused: await placed(
      buildTrainStep(fused.g, { ...fused.spec, ...update }).graph.serialize(),
    ),
    train_micro_step_full: await placed(micro.graph.serialize()),
    train_micro_step_lora: await placed(
      buildPolicyMicroStep(lora, { ...bind, trainable: 'adapters', loss }).graph.serialize(),
    ),
    // Large vocabularies (Qwen's) take the LM head in chunks: another loss graph.
    train_micro_step_full_vocab_chunks: await placed(
      buildPolicyMicroStep(full, { ...bind, trainable: 'all', loss, vocabChunks: 4 }).graph.serialize(),
    ),
    adamw_update_full: await placed(
      buildUpdateStep({ ...update, params: micro.params, dtype: 'float32' }).graph.serialize(),
    ),
    decode_cache_on_device: await placed(
      buildDecodeGraph(full, { ...bind, trainable: 'all', cacheOnDevice: true }).serialize(),
    ),
    decode_greedy_cache_on_device: await placed(
      buildDecodeGraph(full, { ...bind, trainable: 'all', cacheOnDevice: true, pick: 'greedy' }).serialize(),
    ),
  }
}

const greedy = (maxNewTokens: number) => ({ maxNewTokens, temperature: 0, topP: 1, topK: 0, seed: 0 })

/** Prompts of about `tokens` tokens each (random words of the model's vocabulary). */
function prompts(policy: Policy, count: number, tokens: number): string[] {
  const rng = new Random(7)
  const vocab = Math.min(policy.model.tokenizer.size, policy.config.vocab_size)
  return Array.from({ length: count }, () =>
    policy.model.tokenizer.decode(Array.from({ length: tokens }, () => rng.nextUint32() % vocab)),
  )
}

/** Three DPO steps (the state after the first and the last), and a greedy continuation on one provider. */
async function trainedState(dir: string, provider: Provider, withLora: boolean) {
  const policy = await Policy.load(dir, { provider, seed: 3, lora: withLora ? LORA : undefined })
  try {
    const batch = dpoBatch(SIZE.train, policy.config.vocab_size)
    const loss = dpoLoss(SIZE.train.rows / 2, DPO.beta)
    const log: number[] = []
    const states = []
    for (let i = 0; i < 3; i++) {
      const r = await policy.trainStep(batch, { lr: 1e-3, loss, maxGradNorm: 1 })
      log.push(r.loss, r.gradNorm)
      if (i === 0 || i === 2) states.push((await policy.exportState()).tensors)
    }
    const [gen] = await policy.generate(prompts(policy, 1, DECODE.prompt), greedy(16))
    return { log, first: states[0], last: states[1], tokens: gen.tokens }
  } finally {
    await policy.dispose()
  }
}

type StateTensors = Awaited<ReturnType<typeof trainedState>>['first']

/** The largest relative difference of moments and of weights, and the three tensors that differ most. */
function stateDiff(gpu: StateTensors, cpu: StateTensors) {
  const worst = { moments: 0, weights: 0 }
  const perTensor: [string, number][] = []
  for (const [name, t] of cpu) {
    const e = maxRelDiff(gpu.get(name)!.data, t.data)
    const kind = name.startsWith('optim.') ? 'moments' : 'weights'
    worst[kind] = Math.max(worst[kind], e)
    perTensor.push([name, e])
  }
  const top = perTensor.sort((a, b) => b[1] - a[1]).slice(0, 3)
  return { moments: worst.moments, weights: worst.weights, worst_tensors: Object.fromEntries(top) }
}

async function equality(dir: string) {
  const out: Record<string, unknown> = {}
  for (const withLora of [false, true]) {
    const cpu = await trainedState(dir, 'cpu', withLora)
    const gpu = await trainedState(dir, 'webgpu', withLora)
    const first = stateDiff(gpu.first, cpu.first)
    const last = stateDiff(gpu.last, cpu.last)
    const lossDiff = maxRelDiff(gpu.log, cpu.log)
    out[withLora ? 'lora' : 'full'] = {
      loss_and_grad_norm_cpu: cpu.log,
      loss_and_grad_norm_webgpu: gpu.log,
      max_rel_diff_loss_grad_norm: lossDiff,
      // After one step the moments are the clipped gradient and its square: a strict test of the gradients.
      step_1: first,
      // Weights are reported, not tested: Adam moves each by about lr·sign(g) whatever |g| is, so where g
      // is at rounding level the two sides step opposite ways (LoRA's B, which starts at zero, most).
      step_3: last,
      greedy_tokens_equal: gpu.tokens.join() === cpu.tokens.join(),
      equal: lossDiff < 1e-3 && first.moments < 1e-3 && gpu.tokens.join() === cpu.tokens.join(),
    }
  }
  return out
}

/** Forward+backward FLOPs of one step's tokens (full fine-tuning; the LM head counts, the lookup not). */
function stepFlops(policy: Policy, tokens: number): number {
  const cfg = policy.config
  const embedding = cfg.tie_word_embeddings ? 0 : cfg.vocab_size * cfg.hidden_size
  const shape = {
    params: parameterCount(cfg) - embedding,
    layers: cfg.num_hidden_layers,
    heads: cfg.num_attention_heads,
    headDim: cfg.head_dim,
    seqLen: SIZE.train.seq,
  }
  return decoderTrainFlopsPerToken(shape) * tokens
}

/** Our DPO step on one provider: median step time, tokens/s, bytes per step (median of the timed steps). */
async function ourStep(dir: string, provider: Provider, mode: string, peakGflops: number | undefined) {
  const policy = await Policy.load(dir, {
    provider,
    lora: mode === 'train-lora' ? LORA : undefined,
    precision: precisionOf(mode),
  })
  try {
    const batch = dpoBatch(SIZE.train, policy.config.vocab_size)
    const loss = dpoLoss(SIZE.train.rows / 2, DPO.beta)
    const times: number[] = []
    const up: number[] = []
    const down: number[] = []
    let tokens = 0
    for (let i = 0; i < SIZE.warmup + SIZE.steps; i++) {
      const t0 = performance.now()
      const r = await policy.trainStep(batch, { lr: DPO.lr, loss, maxGradNorm: 1 })
      if (i < SIZE.warmup) continue
      times.push(performance.now() - t0)
      up.push(r.transfers.hostToDevice)
      down.push(r.transfers.deviceToHost)
      tokens = r.tokens
    }
    const stepMs = median(times)
    const result: Record<string, unknown> = {
      step_ms: +stepMs.toFixed(1),
      tokens_per_s: Math.round(tokens / (stepMs / 1000)),
      bytes_per_step: { host_to_device: median(up), device_to_host: median(down) },
      weight_bytes: policy.weightBytes(),
    }
    if (mode !== 'train-lora') {
      const gflops = stepFlops(policy, tokens) / (stepMs / 1000) / 1e9
      result.model_gflops = Math.round(gflops)
      if (peakGflops) result.fraction_of_matmul_peak = +(gflops / peakGflops).toFixed(3)
    }
    return result
  } finally {
    await policy.dispose()
  }
}

/** Batched greedy decoding through the policy: tokens/s and bytes per generated token. */
async function ourDecode(dir: string, provider: Provider) {
  const policy = await Policy.load(dir, { provider })
  try {
    const texts = prompts(policy, SIZE.decode.batch, DECODE.prompt)
    const opts = greedy(SIZE.decode.newTokens)
    await policy.generate(texts, opts) // warm-up: sessions, weights on the device
    const t0 = performance.now()
    const before = transferTotals()
    const gens = await policy.generate(texts, opts)
    const seconds = (performance.now() - t0) / 1000
    const moved = transfersBetween(before, transferTotals())
    const tokens = gens.reduce((a, g) => a + g.tokens.length, 0)
    return {
      batch: texts.length,
      prompt_tokens: texts.map((t) => policy.model.tokenizer.encode(t).length),
      generated_tokens: tokens,
      tokens_per_s: Math.round(tokens / seconds),
      bytes_per_token: {
        host_to_device: Math.round(moved.hostToDevice / tokens),
        device_to_host: Math.round(moved.deviceToHost / tokens),
      },
    }
  } finally {
    await policy.dispose()
  }
}

/** Three DPO steps on WebGPU under onnxruntime's profiler: kernel time per step (the last two), by op. */
async function ourProfile(dir: string) {
  const profileDir = await mkdtemp(path.join(os.tmpdir(), 'gpu-profile-'))
  setSessionDefaults({ profilePrefix: `${profileDir}/` })
  try {
    const policy = await Policy.load(dir, { provider: 'webgpu' })
    const steps = 3
    try {
      const batch = dpoBatch(SIZE.train, policy.config.vocab_size)
      const loss = dpoLoss(SIZE.train.rows / 2, DPO.beta)
      for (let i = 0; i < steps; i++) await policy.trainStep(batch, { lr: DPO.lr, loss, maxGradNorm: 1 })
    } finally {
      await policy.dispose() // onnxruntime writes the profiles as the sessions are released
    }
    return summarizeProfiles(profileDir, steps)
  } finally {
    setSessionDefaults({ profilePrefix: undefined })
    await rm(profileDir, { recursive: true, force: true })
  }
}

/** `train-fp16` is `train-full` in mixed precision. */
const precisionOf = (mode: string): Precision => (mode === 'train-fp16' ? 'float16' : 'float32')

function torchJob(dir: string, mode: string): BenchJob {
  const decode = mode === 'decode'
  return {
    dir,
    mode: (mode === 'train-fp16' ? 'train-full' : mode) as BenchJob['mode'],
    precision: precisionOf(mode),
    device: 'cuda',
    threads: os.cpus().length,
    warmup: SIZE.warmup,
    steps: SIZE.steps,
    ...SIZE.train,
    beta: DPO.beta,
    batch: decode ? SIZE.decode.batch : SIZE.train.rows,
    prompt: decode ? DECODE.prompt : SIZE.train.prompt,
    new_tokens: SIZE.decode.newTokens,
    lora: mode === 'train-lora' ? LORA : undefined,
  }
}

/** PyTorch on CUDA, or why not (no Python with torch, no CUDA, a failure). */
async function torchCuda(job: BenchJob): Promise<TorchResult | { skipped: string }> {
  try {
    const torch = await runTorch(job, args.python)
    if (torch && 'killed' in torch) return { skipped: torch.killed }
    return torch ?? { skipped: `${args.python} cannot import torch` }
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? err)
    return { skipped: stderr.trim().split('\n').slice(-2).join(' ') }
  }
}

async function guarded<T>(what: () => Promise<T>): Promise<T | { skipped: string } | { error: string }> {
  if (budgetLeft() <= 0) return { skipped: `time budget of ${args['budget-s']} s spent` }
  try {
    return await what()
  } catch (err) {
    return { error: String((err as Error).message ?? err).split('\n')[0] }
  } finally {
    flush()
  }
}

const statuses = await providerStatuses()
const gpuProviders = statuses.filter((s) => s.available && s.provider !== 'cpu').map((s) => s.provider)
const result: Record<string, unknown> = {
  node: process.version,
  host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model },
  gpu: gpuName(),
  providers: statuses,
  auto_picks: await resolveProvider('auto'),
  size: SIZE,
}
/** The results so far, where GPU_CHECK_OUT points. */
function flush(): void {
  if (process.env.GPU_CHECK_OUT) writeFileSync(process.env.GPU_CHECK_OUT, JSON.stringify(result, null, 1))
}
const webgpu = gpuProviders.includes('webgpu')

/**
 * The matrix throughput of one precision, on WebGPU and through cuBLAS, and the peak a step's FLOP/s
 * is read against: cuBLAS's where measured, else WebGPU's own.
 */
async function matrixPeak(precision: Precision) {
  const torchMatmul = await torchCuda({ ...torchJob('', 'matmul'), n: SIZE.matmul, precision })
  const matmul: Record<string, unknown> = {
    webgpu: webgpu ? await guarded(() => webgpuMatmul(SIZE.matmul, precision)) : { skipped: 'no WebGPU' },
    torch_cuda:
      'gflops' in torchMatmul ? { n: SIZE.matmul, gflops: Math.round(torchMatmul.gflops) } : torchMatmul,
  }
  const peak = [matmul.torch_cuda, matmul.webgpu]
    .map((m) => (m as { gflops?: number }).gflops)
    .find((x) => x !== undefined)
  return { torchMatmul, matmul, peak }
}

const root = await mkdtemp(path.join(os.tmpdir(), 'gpu-check-'))
try {
  const float32 = await matrixPeak('float32')
  const { torchMatmul } = float32
  result.torch = 'torch' in torchMatmul ? { version: torchMatmul.torch, cuda: torchMatmul.cuda } : torchMatmul
  result.matmul = float32.matmul
  const peaks: Record<Precision, number | undefined> = { float32: float32.peak, float16: undefined }
  if (MODES.includes('train-fp16')) {
    const float16 = await matrixPeak('float16')
    result.matmul_float16 = float16.matmul
    peaks.float16 = float16.peak
  }

  const equalityDir = (await modelFolder(root, SIZE.equality)).dir
  if (webgpu) {
    result.placement = await guarded(() => placement(equalityDir))
    result.equality = await guarded(() => equality(equalityDir))
    result.scatter_add_repeats = await guarded(scatterAddRepeats)
    result.weight_gradient_product = await guarded(weightGradientProduct)
  }
  const shapes: Record<string, unknown> = {}
  result.shapes = shapes
  for (const shape of SIZE.shapes) {
    const { dir, config: cfg } =
      shape === SIZE.equality
        ? { dir: equalityDir, config: (await loadModel(equalityDir)).config }
        : await modelFolder(root, shape)
    const entry: Record<string, unknown> = { params: parameterCount(cfg), layers: cfg.num_hidden_layers }
    shapes[shape] = entry
    for (const mode of MODES) {
      if (mode === 'profile') {
        if (gpuProviders.includes('webgpu')) entry.profile_webgpu = await guarded(() => ourProfile(dir))
        continue
      }
      const row: Record<string, unknown> = {}
      entry[mode] = row
      for (const provider of gpuProviders) {
        row[provider] =
          mode === 'train-fp16' && provider !== 'webgpu'
            ? { skipped: 'float16 training runs on WebGPU only' }
            : await guarded(() =>
                mode === 'decode'
                  ? ourDecode(dir, provider)
                  : ourStep(dir, provider, mode, peaks[precisionOf(mode)]),
              )
      }
      const torch = budgetLeft() > 0 ? await torchCuda(torchJob(dir, mode)) : { skipped: 'time budget spent' }
      row.torch_cuda = torch
      flush()
      const ours = row.webgpu as { step_ms?: number; tokens_per_s?: number } | undefined
      if ('torch' in torch && ours?.step_ms && mode !== 'decode')
        row.step_time_vs_torch = +(ours.step_ms / torch.step_ms).toFixed(3)
      if ('torch' in torch && ours?.tokens_per_s && mode === 'decode')
        row.tokens_per_s_vs_torch = +(ours.tokens_per_s / torch.tokens_per_s).toFixed(3)
    }
    if (shape !== SIZE.equality) await rm(dir, { recursive: true, force: true })
  }
} finally {
  await rm(root, { recursive: true, force: true })
}
result.seconds = Math.round((performance.now() - started) / 1000)
flush()
console.log(JSON.stringify(result, null, 1))
