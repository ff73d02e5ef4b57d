/**
 * The DPO training step and decoding job that bench/model.ts (CPU) and the GPU check measure, ours
 * and PyTorch's (bench/model-torch.py) on the same model folder and shapes.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { type Graph, mul, neg, reduceMean, softplus, split, sub } from '../src/engine/index.ts'
import type { PolicyLoss, SequenceLogps } from '../src/model/index.ts'
import type { Policy, TrainBatch } from '../src/model/policy.ts'
import { Random } from '../src/model/random.ts'
import { ChildError, type ChildOutcome, median, runJsonChild } from './child-process.ts'
import type { LORA_ALL_LINEAR } from './real-shapes.ts'

/** 4 chosen/rejected pairs of 256 tokens, the response the last 128; decoding 64 tokens after 32. */
export const DPO = { rows: 8, seq: 256, prompt: 128, beta: 0.1, lr: 1e-5 }
export const DECODE = { prompt: 32, newTokens: 64 }

/** One measurement, as both sides read it (field names are the Python side's). */
export interface BenchJob {
  dir: string
  mode: 'train-full' | 'train-lora' | 'decode' | 'matmul'
  threads: number
  warmup: number
  steps: number
  rows: number
  seq: number
  prompt: number
  beta: number
  batch: number
  new_tokens: number
  lora?: typeof LORA_ALL_LINEAR
  /** PyTorch only: 'cpu' (default) or 'cuda'. */
  device?: 'cpu' | 'cuda'
  /** matmul only: the square size. */
  n?: number
  /**
   * float16: mixed precision, as the policy's `precision: 'float16'` (PyTorch: autocast to float16
   * with a gradient scaler; matmul: float16 operands). Default float32.
   */
  precision?: 'float32' | 'float16'
}

/** DPO (Rafailov et al. 2023, eq. 7) on rows [chosen; rejected], reference log-probs fed as inputs. */
export function dpoLoss(pairs: number, beta: number): PolicyLoss {
  return {
    name: 'dpo',
    rows: 2 * pairs,
    build(g: Graph, logps: SequenceLogps) {
      const [chosen, rejected] = split(g, logps.sum, { axis: 0, sizes: [pairs, pairs] })
      const refChosen = g.input('ref.chosen', 'float32', [pairs])
      const refRejected = g.input('ref.rejected', 'float32', [pairs])
      const margin = sub(g, sub(g, chosen, refChosen), sub(g, rejected, refRejected))
      return { loss: reduceMean(g, softplus(g, neg(g, mul(g, margin, g.constant(beta, 'float32'))))) }
    },
  }
}

/** Random token rows of the job's shape and zero reference log-probs: one DPO micro-batch. */
export function dpoBatch(
  job: Pick<BenchJob, 'rows' | 'seq' | 'prompt'>,
  vocab: number,
  seed = 0,
): TrainBatch {
  const rng = new Random(seed)
  const rows = Array.from({ length: job.rows }, () => {
    const ids = Array.from({ length: job.seq }, () => rng.nextUint32() % vocab)
    return { prompt: ids.slice(0, job.prompt), response: ids.slice(job.prompt) }
  })
  const pairs = job.rows / 2
  const zeros = { dtype: 'float32' as const, dims: [pairs], data: new Float32Array(pairs) }
  return { rows, feeds: { 'ref.chosen': zeros, 'ref.rejected': zeros } }
}

/** The median time of the job's DPO steps on `policy` after its warm-up steps, in ms. */
export async function timeDpoSteps(
  policy: Policy,
  job: Pick<BenchJob, 'rows' | 'seq' | 'prompt' | 'beta' | 'warmup' | 'steps'>,
): Promise<number> {
  const batch = dpoBatch(job, policy.config.vocab_size)
  const loss = dpoLoss(job.rows / 2, job.beta)
  const times: number[] = []
  for (let i = 0; i < job.warmup + job.steps; i++) {
    const start = performance.now()
    await policy.trainStep(batch, { lr: DPO.lr, loss })
    if (i >= job.warmup) times.push(performance.now() - start)
  }
  return median(times)
}

/** What bench/model-torch.py prints: the measurement, peak memory, and the versions it ran with. */
export interface TorchResult {
  step_ms: number
  tokens_per_s: number
  gflops: number
  peak_rss_mb: number
  torch: string
  /** BLAS_INFO of the build and the BLAS libraries actually loaded. */
  blas: string
  /** transformers' model class when it imports, else the hand-written reference math. */
  implementation: string
  /** CUDA jobs: CUDA version, GPU name, peak GPU memory. */
  cuda?: string
  gpu?: string
  peak_gpu_mb?: number
}

/**
 * Runs a job with PyTorch (bench/model-torch.py) in its own process; null when `python` is missing
 * or cannot import torch, `killed` when it passed `maxRssBytes` (see runJsonChild). Other failures throw.
 */
export async function runTorch(
  job: BenchJob,
  python: string,
  maxRssBytes?: number,
): Promise<TorchResult | { killed: string } | null> {
  if (python.includes('/') && !existsSync(python)) return null
  let outcome: ChildOutcome
  try {
    outcome = await runJsonChild(
      python,
      [path.join(import.meta.dirname, 'model-torch.py'), JSON.stringify(job)],
      {
        env: {
          ...process.env,
          OMP_NUM_THREADS: String(job.threads),
          OPENBLAS_NUM_THREADS: String(job.threads),
        },
        maxRssBytes,
      },
    )
  } catch (err) {
    if (err instanceof ChildError && err.stderr.includes("No module named 'torch'")) return null
    throw err
  }
  return 'killed' in outcome ? outcome : (outcome.result as unknown as TorchResult)
}
