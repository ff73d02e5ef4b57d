/**
 * The engine at real model sizes: random weights in the shapes of Qwen2.5-0.5B, Llama-3.2-1B,
 * Qwen2.5-1.5B and Qwen2.5-3B (bench/real-shapes.ts), a DPO training step on 4 × 512 tokens (LoRA
 * r16 on every linear layer, or full fine-tuning) and greedy decoding at batch 1 and 8, one JSON line
 * per shape and mode, each measurement in its own process: step time or tokens/s and peak RSS
 * (VmHWM), next to the service's memory estimate for that shape and mode. A training measurement
 * first does what a DPO iteration does before its steps (generates from the rows' prompts, scores
 * them under the policy, freezes the reference and scores them under it), so its peak is a run's.
 *
 * A training mode is planned as a run is (src/sso/memory-plan.ts: a DPO run whose micro-batch is the
 * bench's rows, gradient checkpointing only when the estimate needs it to fit); decoding is held to
 * the parts of the same estimate a decoding process holds (a LoRA policy, as a LoRA run decodes with:
 * runtime, weights, the adapters' optimizer state, generation). When the estimate exceeds the budget
 * (`--budget-gb`, default WORKER_MEMORY_GB or the worker's default: the budget of one run), the line
 * says `refused` with the estimate and nothing runs. A measurement that passes the budget anyway is
 * killed and reported (`killed`; see bench/child-process.ts).
 *
 * When a Python can import torch, PyTorch eager runs the same job on the same weights folder
 * (bench/model-torch.py, without gradient checkpointing), under the same budget: `torch_impl` says
 * whether that was transformers' model class or the hand-written reference, with `torch_version` and
 * `torch_blas`. `vs_torch` is our step time over torch's (target ≤ 0.6), or our tokens/s over torch's
 * (target ≥ 2).
 *
 *   node --import tsx bench/scale.ts [--shapes 0.5b,1b,1.5b,3b] [--modes lora,full,decode1,decode8]
 *     [--layers N] [--rows 4] [--seq 512] [--steps 2] [--budget-gb G] [--python PATH | --no-torch]
 *     [--weights-dtype float32|bfloat16|float16] [--optimizer-state-dtype float32|bfloat16]
 *     [--gradient-dtype float32|float16] [--threads 2]
 *
 * `--layers` builds every shape with N layers instead of its own (the lines say `layers_override`);
 * `--weights-dtype` stores LoRA's frozen base in that type, as the run hyperparameter
 * `weights_dtype` does, and the estimate counts it so; `--optimizer-state-dtype` is
 * `optimizer_state_dtype` (AdamW's moments), `--gradient-dtype` is `gradient_dtype`. PyTorch
 * decodes the plain model, without the (zero) adapters.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { defaultWorkerMemoryBytes } from '../src/config.ts'
import { type GradientDType, trainingProcessEnv } from '../src/engine/index.ts'
import { ValidationError } from '../src/errors.ts'
import { type LlamaConfig, parameterCount, parseLlamaConfig } from '../src/model/config.ts'
import {
  estimatePolicyMemory,
  type MemoryEstimate,
  type OptimizerStateDtype,
} from '../src/model/memory-estimate.ts'
import { Policy, type WeightsDType } from '../src/model/policy.ts'
import { Random } from '../src/model/random.ts'
import { makeTinyModel } from '../src/model/tiny.ts'
import { resolveHyperparameters } from '../src/sso/hyperparameters.ts'
import { planRunMemory } from '../src/sso/memory-plan.ts'
import {
  type ChildOutcome,
  findTorchPython,
  median,
  peakRssMb,
  rssMb,
  runJsonChild,
} from './child-process.ts'
import { type BenchJob, DECODE, DPO, dpoBatch, runTorch, timeDpoSteps } from './dpo-step.ts'
import { LORA_ALL_LINEAR as LORA, REAL_SHAPES, type RealShape } from './real-shapes.ts'

const GB = 2 ** 30
const MODES = ['lora', 'full', 'decode1', 'decode8'] as const
type Mode = (typeof MODES)[number]

type Job = BenchJob & {
  checkpoint: boolean
  weightsDtype: WeightsDType
  optimizerStateDtype: OptimizerStateDtype
  gradientDtype: GradientDType
}

/** New tokens of the generation a training measurement starts with (its prompts are the rows' prompts). */
const ITERATION_NEW_TOKENS = 16

const greedy = (maxNewTokens: number) => ({ maxNewTokens, temperature: 0, topP: 1, topK: 0, seed: 0 })

const round = (x: number, digits = 1) => +x.toFixed(digits)
const gb = (bytes: number) => round(bytes / GB, 2)

/** Prompt text of exactly `tokens` tokens: characters the tiny tokenizer never merged (no BPE rule has them). */
function promptOf(policy: Policy, tokens: number, seed: number): string {
  const chars = '#$%&@^_|~<>[]{}'
  const rng = new Random(seed)
  const text = Array.from({ length: tokens }, () => chars[rng.nextUint32() % chars.length]).join('')
  const length = policy.promptIds(text).length
  if (length !== tokens) throw new Error(`the prompt encodes to ${length} tokens, not ${tokens}`)
  return text
}

/** One measurement, in the child process: the step time or decoding speed, and the peak RSS. */
async function measure(job: Job): Promise<Record<string, unknown>> {
  if (job.mode === 'decode') {
    const policy = await Policy.load(job.dir, {
      lora: job.lora,
      weightsDtype: job.weightsDtype,
      intraOpThreads: job.threads,
    })
    const prompts = Array.from({ length: job.batch }, (_, i) => promptOf(policy, job.prompt, i))
    const opts = greedy(job.new_tokens)
    const speeds: number[] = []
    for (let i = 0; i < job.warmup + job.steps; i++) {
      const start = performance.now()
      const out = await policy.generate(prompts, opts)
      const tokens = out.reduce((n, g) => n + g.tokens.length, 0)
      if (i >= job.warmup) speeds.push(tokens / ((performance.now() - start) / 1000))
    }
    await policy.dispose()
    return { tokens_per_s: median(speeds) }
  }
  const policy = await Policy.load(job.dir, {
    lora: job.lora,
    checkpoint: job.checkpoint,
    weightsDtype: job.weightsDtype,
    adamw: { stateDtype: job.optimizerStateDtype, gradDtype: job.gradientDtype },
    intraOpThreads: job.threads,
  })
  // resident MB after each phase: where a peak comes from
  const rss: Record<string, number> = { loaded: Math.round(rssMb()) }
  // what an iteration of a DPO run holds before its steps: generation, policy and reference scoring
  const prompts = Array.from({ length: job.rows }, (_, i) => promptOf(policy, job.prompt, i))
  await policy.generate(prompts, greedy(ITERATION_NEW_TOKENS))
  rss.generated = Math.round(rssMb())
  const { rows } = dpoBatch(job, policy.config.vocab_size)
  await policy.logprobs(rows, 'policy')
  rss.policy_scored = Math.round(rssMb())
  await policy.freezeReference()
  await policy.logprobs(rows, 'reference')
  await policy.releaseReference() // as a run does once its reference log-probs are scored
  rss.reference_scored = Math.round(rssMb())
  const stepMs = await timeDpoSteps(policy, job)
  rss.trained = Math.round(rssMb())
  await policy.dispose()
  return { step_ms: stepMs, rss_mb: rss }
}

function shapeConfig(shape: RealShape, layers: number | undefined): LlamaConfig {
  const json = { ...REAL_SHAPES[shape].config, ...(layers ? { num_hidden_layers: layers } : {}) }
  const parsed = parseLlamaConfig(json)
  if (!('config' in parsed)) throw new Error(`${shape}: ${parsed.problems.join('; ')}`)
  return parsed.config
}

interface Verdict {
  estimate: MemoryEstimate
  /** What the estimate counts (decoding: the parts a decoding process holds). */
  scope: string
  fits: boolean
  checkpoint: boolean
}

/** The service's estimate for a training mode: the plan of a DPO run with the bench's micro-batch. */
function trainingVerdict(cfg: LlamaConfig, mode: 'lora' | 'full', job: Job, budgetBytes: number): Verdict {
  const pairs = job.rows / 2
  const hp = resolveHyperparameters('dpo', {
    finetuning: mode,
    lora: LORA,
    batch_size: pairs,
    micro_batch_size: pairs,
    gradient_checkpointing: 'auto',
    max_prompt_tokens: job.prompt,
    max_new_tokens: job.seq - job.prompt,
    generation_batch_size: job.rows,
    weights_dtype: job.weightsDtype,
    optimizer_state_dtype: job.optimizerStateDtype,
    gradient_dtype: job.gradientDtype,
  })
  const scope = 'dpo run (training, reference and policy scoring, generation)'
  try {
    const plan = planRunMemory(cfg, 'dpo', hp, budgetBytes)
    return { estimate: plan.estimate, scope, fits: true, checkpoint: plan.checkpoint }
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err
    const d = err.details as {
      estimate_bytes: number
      parts: Record<string, number>
      gradient_checkpointing: boolean
    }
    return {
      estimate: { bytes: d.estimate_bytes, parts: d.parts },
      scope,
      fits: false,
      checkpoint: d.gradient_checkpointing,
    }
  }
}

/**
 * The parts of the service's estimate that a process decoding `batch` rows holds: a LoRA policy
 * (a full fine-tuning one would hold the whole model's optimizer state, allocated at load).
 */
function decodeVerdict(cfg: LlamaConfig, job: Job, budgetBytes: number): Verdict {
  const { parts: all } = estimatePolicyMemory(
    cfg,
    {
      trainRows: job.batch,
      batchRows: job.batch,
      seq: job.prompt + job.new_tokens,
      promptTokens: job.prompt,
      checkpoint: false,
    },
    { lora: job.lora, weightsDtype: job.weightsDtype },
  )
  const parts = {
    runtime: all.runtime,
    weights: all.weights,
    optimizer: all.optimizer,
    generation: all.generation,
  }
  const bytes = Object.values(parts).reduce((a, b) => a + b, 0)
  return {
    estimate: { bytes, parts },
    scope: 'runtime + weights + optimizer + generation',
    fits: bytes <= budgetBytes,
    checkpoint: false,
  }
}

function jobFor(dir: string, mode: Mode, args: Record<string, string | boolean | undefined>): Job {
  const decode = mode.startsWith('decode')
  const seq = Number(args.seq)
  return {
    dir,
    mode: decode ? 'decode' : mode === 'lora' ? 'train-lora' : 'train-full',
    threads: Number(args.threads),
    warmup: 1,
    steps: Number(args.steps),
    rows: Number(args.rows),
    seq,
    prompt: decode ? DECODE.prompt : seq / 2,
    beta: DPO.beta,
    batch: decode ? Number(mode.slice('decode'.length)) : Number(args.rows),
    new_tokens: DECODE.newTokens,
    // decoding runs through a LoRA policy too (its adapters start at zero: the base model's output)
    lora: mode === 'full' ? undefined : LORA,
    checkpoint: false,
    weightsDtype: args['weights-dtype'] as WeightsDType,
    optimizerStateDtype: args['optimizer-state-dtype'] as OptimizerStateDtype,
    gradientDtype: args['gradient-dtype'] as GradientDType,
  }
}

/** This script again, in a child process (same node flags, e.g. --import tsx). */
function runSelf(flag: '--job' | '--make', payload: unknown, maxRssBytes?: number): Promise<ChildOutcome> {
  return runJsonChild(
    process.execPath,
    [...process.execArgv, import.meta.filename, flag, JSON.stringify(payload)],
    {
      env: trainingProcessEnv(process.env),
      maxRssBytes,
    },
  )
}

const { values: args } = parseArgs({
  allowNegative: true,
  options: {
    shapes: { type: 'string', default: Object.keys(REAL_SHAPES).join(',') },
    modes: { type: 'string', default: MODES.join(',') },
    layers: { type: 'string' },
    rows: { type: 'string', default: '4' },
    seq: { type: 'string', default: '512' },
    steps: { type: 'string', default: '2' },
    'budget-gb': { type: 'string' },
    python: { type: 'string' },
    torch: { type: 'boolean', default: true },
    'weights-dtype': { type: 'string', default: 'float32' },
    'optimizer-state-dtype': { type: 'string', default: 'float32' },
    'gradient-dtype': { type: 'string', default: 'float32' },
    threads: { type: 'string', default: '2' },
    job: { type: 'string' },
    make: { type: 'string' },
  },
})

if (args.job) {
  const result = await measure(JSON.parse(args.job) as Job)
  console.log(JSON.stringify({ ...result, peak_rss_mb: peakRssMb() }))
} else if (args.make) {
  const { dir, config } = JSON.parse(args.make) as { dir: string; config: Record<string, unknown> }
  const info = await makeTinyModel(dir, { seed: 1, overrides: config })
  console.log(JSON.stringify({ bytes: info.bytes }))
} else {
  const budgetBytes = args['budget-gb']
    ? Number(args['budget-gb']) * GB
    : process.env.WORKER_MEMORY_GB
      ? Number(process.env.WORKER_MEMORY_GB) * GB
      : defaultWorkerMemoryBytes()
  const layers = args.layers ? Number(args.layers) : undefined
  const { python, tried } = args.torch
    ? findTorchPython(args.python)
    : { python: null, tried: ['none (--no-torch)'] }
  console.log(
    JSON.stringify({
      name: 'scale/setup',
      budget_gb: gb(budgetBytes),
      layers_override: layers ?? null,
      train: { rows: Number(args.rows), seq: Number(args.seq), objective: 'dpo' },
      decode: { prompt: DECODE.prompt, new_tokens: DECODE.newTokens },
      torch: python ?? `no torch in ${tried.join(', ')}`,
    }),
  )
  const root = await mkdtemp(path.join(tmpdir(), 'bench-scale-'))
  try {
    for (const shape of args.shapes.split(',') as RealShape[]) {
      if (!(shape in REAL_SHAPES))
        throw new Error(`unknown shape ${shape}: ${Object.keys(REAL_SHAPES).join(', ')}`)
      const cfg = shapeConfig(shape, layers)
      const dir = path.join(root, shape)
      let made = false
      for (const mode of args.modes.split(',') as Mode[]) {
        if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode}: ${MODES.join(', ')}`)
        const job = jobFor(dir, mode, args)
        const verdict =
          job.mode === 'decode'
            ? decodeVerdict(cfg, job, budgetBytes)
            : trainingVerdict(cfg, mode as 'lora', job, budgetBytes)
        job.checkpoint = verdict.checkpoint
        const decode = job.mode === 'decode'
        const line: Record<string, unknown> = {
          name: `scale/${mode}`,
          shape: REAL_SHAPES[shape].name,
          params: parameterCount(cfg),
          layers: cfg.num_hidden_layers,
          ...(layers ? { layers_override: true } : {}),
          ...(decode
            ? { batch: job.batch, prompt: job.prompt, new_tokens: job.new_tokens }
            : {
                rows: job.rows,
                seq: job.seq,
                checkpoint: job.checkpoint,
                weights_dtype: job.weightsDtype,
                optimizer_state_dtype: job.optimizerStateDtype,
                gradient_dtype: job.gradientDtype,
              }),
          threads: job.threads,
          estimate_gb: gb(verdict.estimate.bytes),
          estimate_scope: verdict.scope,
          estimate_parts_mb: Object.fromEntries(
            Object.entries(verdict.estimate.parts).map(([k, v]) => [k, Math.round(v / 2 ** 20)]),
          ),
          budget_gb: gb(budgetBytes),
          fits: verdict.fits,
        }
        if (!verdict.fits) {
          console.log(
            JSON.stringify({
              ...line,
              refused: `estimate ${gb(verdict.estimate.bytes)} GB > budget ${gb(budgetBytes)} GB`,
            }),
          )
          continue
        }
        if (!made) {
          const outcome = await runSelf(
            '--make',
            { dir, config: { ...REAL_SHAPES[shape].config, num_hidden_layers: cfg.num_hidden_layers } },
            budgetBytes,
          )
          if ('killed' in outcome) throw new Error(`making the ${shape} weights: ${outcome.killed}`)
          made = true
        }
        const ours = await runSelf('--job', job, budgetBytes)
        if ('killed' in ours) {
          console.log(JSON.stringify({ ...line, killed: ours.killed }))
          continue
        }
        const r = ours.result as Record<string, number> & { rss_mb?: Record<string, number> }
        Object.assign(
          line,
          decode ? { tokens_per_s: round(r.tokens_per_s, 2) } : { step_ms: Math.round(r.step_ms) },
        )
        if (!decode) line.tokens_per_s = round((job.rows * job.seq) / (r.step_ms / 1000), 1)
        line.peak_rss_mb = Math.round(r.peak_rss_mb)
        if (r.rss_mb) line.rss_mb_after = r.rss_mb
        line.estimate_over_peak = round(verdict.estimate.bytes / 2 ** 20 / r.peak_rss_mb, 2)
        const torch = python ? await runTorch(job, python, budgetBytes) : null
        if (torch && 'killed' in torch) line.torch = { killed: torch.killed }
        else if (torch) {
          line.torch = decode
            ? { tokens_per_s: round(torch.tokens_per_s, 2) }
            : { step_ms: Math.round(torch.step_ms), checkpoint: false }
          line.torch_peak_rss_mb = Math.round(torch.peak_rss_mb)
          line.torch_version = torch.torch
          line.torch_blas = torch.blas
          line.torch_impl = torch.implementation
          line.vs_torch = round(decode ? r.tokens_per_s / torch.tokens_per_s : r.step_ms / torch.step_ms, 3)
        }
        console.log(JSON.stringify(line))
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}
