/**
 * Where the weights' memory goes: loads a random-weight model in the Qwen2.5-0.5B shape (fewer
 * layers by default), then uses it as a run does (policy scoring, reference scoring, a training
 * step, greedy decoding) and prints one JSON line per stage with the process's resident memory
 * (`rss_mb`) and its peak so far (`peak_mb`, VmHWM), next to the bytes the weights need
 * (`weight_mb`: every weight once, in the stored dtype) and `bytes_per_param` = peak / parameters.
 * Each mode runs in its own process so that peaks do not mix.
 *
 *   node --import tsx bench/memory.ts [--layers 4] [--modes lora,full] [--weights-dtype float32,bfloat16]
 *     [--rows 4] [--seq 128] [--threads 2] [--checkpoint]
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { neg, reduceMean, trainingProcessEnv } from '../src/engine/index.ts'
import { parameterCount } from '../src/model/config.ts'
import type { PolicyLoss } from '../src/model/index.ts'
import { Policy, type WeightsDType } from '../src/model/policy.ts'
import { Random } from '../src/model/random.ts'
import { makeTinyModel } from '../src/model/tiny.ts'
import { LORA_ALL_LINEAR as LORA, QWEN2_05B } from './real-shapes.ts'

const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }

interface Job {
  dir: string
  mode: 'lora' | 'full'
  weightsDtype: WeightsDType
  rows: number
  seq: number
  threads: number
  checkpoint: boolean
}

function memory(): { rss_mb: number; peak_mb: number } {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss_mb: Math.round(kb('VmRSS') / 1024), peak_mb: Math.round(kb('VmHWM') / 1024) }
}

async function child(job: Job): Promise<void> {
  const policy = await Policy.load(job.dir, {
    lora: job.mode === 'lora' ? LORA : undefined,
    intraOpThreads: job.threads,
    weightsDtype: job.weightsDtype,
    checkpoint: job.checkpoint,
  })
  const params = parameterCount(policy.config)
  const base = {
    mode: job.mode,
    weights_dtype: job.weightsDtype,
    layers: policy.config.num_hidden_layers,
    rows: job.rows,
    seq: job.seq,
    checkpoint: job.checkpoint,
    params,
    weight_mb: Math.round(policy.weightBytes() / 2 ** 20),
  }
  const report = (stage: string, extra: Record<string, number> = {}) => {
    const mem = memory()
    console.log(
      JSON.stringify({
        ...base,
        stage,
        ...mem,
        bytes_per_param: +((mem.peak_mb * 2 ** 20) / params).toFixed(2),
        ...extra,
      }),
    )
  }
  report('loaded')
  const rng = new Random(7)
  const half = job.seq / 2
  const ids = (n: number) =>
    Array.from({ length: n }, () => Math.floor(rng.next() * policy.config.vocab_size))
  const rows = Array.from({ length: job.rows }, () => ({ prompt: ids(half), response: ids(half) }))
  let t = performance.now()
  await policy.logprobs(rows)
  report('scored', { ms: Math.round(performance.now() - t) })
  await policy.freezeReference()
  await policy.logprobs(rows, 'reference')
  report('reference scored')
  t = performance.now()
  await policy.trainStep({ rows }, { lr: 1e-5, loss: sft })
  report('trained', { ms: Math.round(performance.now() - t) })
  t = performance.now()
  const [gen] = await policy.generate(['The quick brown fox jumps over the lazy dog.'], {
    maxNewTokens: 16,
    temperature: 0,
    topP: 1,
    topK: 0,
    seed: 1,
    stopTokenIds: [],
  })
  const ms = performance.now() - t
  report('decoded', { tokens_per_s: +((gen.tokens.length * 1000) / ms).toFixed(2) })
  await policy.dispose()
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      layers: { type: 'string', default: '4' },
      modes: { type: 'string', default: 'lora,full' },
      'weights-dtype': { type: 'string', default: 'float32' },
      rows: { type: 'string', default: '4' },
      seq: { type: 'string', default: '128' },
      threads: { type: 'string', default: '2' },
      checkpoint: { type: 'boolean', default: false },
      job: { type: 'string' },
    },
  })
  if (values.job) return child(JSON.parse(values.job) as Job)
  const root = await mkdtemp(path.join(tmpdir(), 'sso-memory-'))
  try {
    const dir = path.join(root, 'model')
    await makeTinyModel(dir, {
      seed: 1,
      preset: 'tiny',
      overrides: { ...QWEN2_05B, num_hidden_layers: Number(values.layers) },
    })
    for (const mode of values.modes.split(',') as Job['mode'][]) {
      for (const weightsDtype of values['weights-dtype'].split(',') as WeightsDType[]) {
        const job: Job = {
          dir,
          mode,
          weightsDtype,
          rows: Number(values.rows),
          seq: Number(values.seq),
          threads: Number(values.threads),
          checkpoint: values.checkpoint,
        }
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', import.meta.filename, '--job', JSON.stringify(job)],
          { env: trainingProcessEnv(process.env), encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
        )
        process.stdout.write(out)
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main()
