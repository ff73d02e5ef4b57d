/**
 * Model benchmarks on the CPU provider, one JSON line per measurement: a DPO training step on a
 * chosen/rejected batch (full fine-tuning and LoRA) and greedy decoding (batch 1 and 8), for tiny
 * models of ~1M, ~10M and ~50M parameters. When a Python can import torch (`--python`, else the
 * first of python3 and /usr/bin/python3, where Debian's python3-torch lives), PyTorch does the same
 * work on the same weights in the same run and `baseline_ratio` is ours / torch in time (<= 1: as
 * fast or faster; for decoding, torch tokens/s over ours). When that Python can import
 * `transformers`, the PyTorch side is HF's own model class with its default attention (SDPA) and its
 * generate(); otherwise the hand-written model of scripts/make-model-fixtures.py. Every line names
 * which ran (`torch_impl`), torch's version and its BLAS (`torch_blas`: Debian's 1.13 calls the system
 * BLAS, so install libopenblas0-pthread with it, or torch runs on the reference BLAS and the ratio
 * flatters us). Without torch, a first line says so and the lines carry no baseline.
 * Every measurement runs in its own process, so peak RSS is its own; it is compared with
 * weights + gradients + AdamW moments (`state_mb`).
 *
 *   node --import tsx bench/model.ts [--presets tiny,10m,50m] [--modes train-full,train-lora,decode-1,decode-8]
 *     [--threads 2] [--python PATH]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createGraphSession, trainingProcessEnv } from '../src/engine/index.ts'
import { parameterCount } from '../src/model/config.ts'
import { type Decoder, generate } from '../src/model/generate.ts'
import { buildDecodeGraph } from '../src/model/kv-cache.ts'
import { loadModel } from '../src/model/load.ts'
import { loraModules } from '../src/model/lora.ts'
import { Policy } from '../src/model/policy.ts'
import { Random } from '../src/model/random.ts'
import { makeTinyModel, type TinyPreset } from '../src/model/tiny.ts'
import { findTorchPython, median, peakRssMb, runJsonChild } from './child-process.ts'
import { type BenchJob, DECODE, DPO, runTorch, type TorchResult, timeDpoSteps } from './dpo-step.ts'
import { LORA_ALL_LINEAR } from './real-shapes.ts'

const ROWS = DPO.rows
const SEQ = DPO.seq
const PROMPT = DPO.prompt
const LORA = LORA_ALL_LINEAR
const STEPS: Record<TinyPreset, number> = { tiny: 5, '10m': 4, '50m': 3 }

type Job = BenchJob & { mode: 'train-full' | 'train-lora' | 'decode' }

async function runOurs(job: Job): Promise<Record<string, number>> {
  const rng = new Random(0)
  if (job.mode === 'decode') {
    const model = await loadModel(job.dir)
    const graph = buildDecodeGraph({ cfg: model.config, weights: model.weights }, { trainable: 'none' })
    const session = await createGraphSession(graph.serialize(), {
      provider: 'cpu',
      name: 'decode',
      intraOpThreads: job.threads,
    })
    const decoder: Decoder = {
      cfg: model.config,
      dtype: 'float32',
      run: (feeds) => session.run(feeds),
      tokenizer: model.tokenizer,
      stopTokenIds: [],
    }
    const prompts = Array.from({ length: job.batch }, () =>
      Array.from({ length: job.prompt }, () => rng.nextUint32() % model.config.vocab_size),
    )
    const opts = { maxNewTokens: job.new_tokens, temperature: 0, topP: 1, topK: 0, seed: 0 }
    const times: number[] = []
    for (let i = 0; i < job.warmup + job.steps; i++) {
      const start = performance.now()
      const out = await generate(decoder, prompts, opts)
      if (out.some((o) => o.tokens.length !== job.new_tokens)) throw new Error('decode stopped early')
      if (i >= job.warmup) times.push(performance.now() - start)
    }
    await session.release()
    return { tokens_per_s: (job.batch * job.new_tokens) / (median(times) / 1000) }
  }
  const policy = await Policy.load(job.dir, { lora: job.lora, intraOpThreads: job.threads })
  const stepMs = await timeDpoSteps(policy, job)
  await policy.dispose()
  return { step_ms: stepMs }
}

async function runOursInChild(job: Job): Promise<Record<string, number>> {
  const outcome = await runJsonChild(
    process.execPath,
    // The same node flags (e.g. --import tsx) and script as this process.
    [...process.execArgv, import.meta.filename, '--job', JSON.stringify(job)],
    { env: trainingProcessEnv(process.env) },
  )
  return (outcome as { result: Record<string, number> }).result
}

const { values: args } = parseArgs({
  options: {
    presets: { type: 'string', default: 'tiny,10m,50m' },
    modes: { type: 'string', default: 'train-full,train-lora,decode-1,decode-8' },
    threads: { type: 'string', default: '2' },
    /** A Python that can import torch; by default the first of PYTHONS that can. */
    python: { type: 'string' },
    job: { type: 'string' },
  },
})

if (args.job) {
  const job = JSON.parse(args.job) as Job
  const result = await runOurs(job)
  console.log(JSON.stringify({ ...result, peak_rss_mb: peakRssMb() }))
} else {
  const threads = Number(args.threads)
  const { python, tried } = findTorchPython(args.python)
  if (!python)
    console.log(
      JSON.stringify({ name: 'model/torch', available: false, note: `no torch in ${tried.join(', ')}` }),
    )
  const root = await mkdtemp(path.join(tmpdir(), 'bench-model-'))
  try {
    for (const preset of args.presets.split(',') as TinyPreset[]) {
      const dir = path.join(root, preset)
      const info = await makeTinyModel(dir, { seed: 1, preset })
      const params = parameterCount(info.config)
      for (const mode of args.modes.split(',')) {
        const decode = mode.startsWith('decode')
        const job: Job = {
          dir,
          mode: decode ? 'decode' : (mode as Job['mode']),
          threads,
          warmup: decode ? 1 : 2,
          steps: decode ? 3 : STEPS[preset],
          rows: ROWS,
          seq: SEQ,
          prompt: decode ? DECODE.prompt : PROMPT,
          beta: DPO.beta,
          batch: decode ? Number(mode.split('-')[1]) : ROWS,
          new_tokens: DECODE.newTokens,
          lora: mode === 'train-lora' ? LORA : undefined,
        }
        const ours = await runOursInChild(job)
        const torch = python ? ((await runTorch(job, python)) as TorchResult | null) : null
        const trainable =
          mode === 'train-lora'
            ? loraModules(info.config, LORA).reduce((s, m) => s + LORA.rank * (m.in + m.out), 0)
            : params
        const line: Record<string, unknown> = {
          name: `model/${mode}`,
          ep: 'cpu',
          threads,
          preset,
          params,
          shape: decode
            ? { batch: job.batch, prompt: job.prompt, new_tokens: job.new_tokens }
            : { rows: ROWS, seq: SEQ, response: SEQ - PROMPT },
          ...(decode ? { tokens_per_s: ours.tokens_per_s } : { p50_ms: ours.step_ms }),
          peak_rss_mb: ours.peak_rss_mb,
        }
        if (!decode) {
          // float32 weights (all, frozen or not) + gradient + two AdamW moments of the trainable ones.
          line.state_mb = (4 * (params + 3 * trainable)) / 2 ** 20
        }
        if (torch) {
          line.torch = decode ? { tokens_per_s: torch.tokens_per_s } : { p50_ms: torch.step_ms }
          line.torch_peak_rss_mb = torch.peak_rss_mb
          line.torch_version = torch.torch
          line.torch_blas = torch.blas
          line.torch_impl = torch.implementation
          line.baseline_ratio = decode ? torch.tokens_per_s / ours.tokens_per_s : ours.step_ms / torch.step_ms
        }
        console.log(JSON.stringify(line))
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}
