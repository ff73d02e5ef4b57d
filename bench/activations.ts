/**
 * Activation memory of one training step (forward + backward graph, gradients out), with and
 * without gradient checkpointing and the chunked LM head: one JSON line per measurement, each in its
 * own process so peak RSS is its own. Random weights in real shapes, built in memory.
 *
 *   node --import tsx bench/activations.ts [--shapes 50m,qwen2-0.5b-4l] [--rows 4] [--seq 256]
 *     [--threads 2] [--mode lora|full] [--variants plain,checkpoint] [--layers N] [--vocab-chunks C]
 *
 * `rss_ready_mb` is the resident size once the session exists (weights, session), `peak_mb` the
 * process peak after the steps; `activations_mb` = peak − ready is what the step added.
 */
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { createGraphSession, neg, reduceMean, trainingProcessEnv } from '../src/engine/index.ts'
import { packRows, scoringFeeds } from '../src/model/batch.ts'
import { type LlamaConfig, parseLlamaConfig } from '../src/model/config.ts'
import { buildPolicyStepGraph } from '../src/model/graphs.ts'
import { initAdapters } from '../src/model/lora.ts'
import { randomWeights, TINY_PRESETS } from '../src/model/tiny.ts'
import { LORA_ALL_LINEAR as LORA, QWEN2_05B } from './real-shapes.ts'

const SHAPES: Record<string, Record<string, unknown>> = {
  '50m': { model_type: 'llama', ...TINY_PRESETS['50m'], tie_word_embeddings: true },
  // Qwen2.5-0.5B with 4 of its 24 layers.
  'qwen2-0.5b-4l': { ...QWEN2_05B, num_hidden_layers: 4 },
}

interface Job {
  shape: string
  /** Overrides the shape's layer count. */
  layers?: number
  mode: 'lora' | 'full'
  checkpoint: boolean
  vocabChunks?: number
  rows: number
  seq: number
  threads: number
  steps: number
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20)

function config(shape: string, layers?: number): LlamaConfig {
  const parsed = parseLlamaConfig({
    rope_theta: 10000,
    ...SHAPES[shape],
    ...(layers ? { num_hidden_layers: layers } : {}),
  })
  if (!('config' in parsed)) throw new Error(parsed.problems.join('; '))
  return parsed.config
}

async function measure(job: Job): Promise<Record<string, number>> {
  const cfg = config(job.shape, job.layers)
  const weights = randomWeights(cfg, 1)
  const lora = job.mode === 'lora' ? { spec: LORA, adapters: initAdapters(cfg, LORA, 2) } : undefined
  const built = buildPolicyStepGraph(
    { cfg, weights, lora },
    {
      trainable: lora ? 'adapters' : 'all',
      checkpoint: job.checkpoint,
      vocabChunks: job.vocabChunks,
      loss: { name: 'mean', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) },
    },
  )
  const session = await createGraphSession(built.graph.serialize(), {
    provider: 'cpu',
    name: 'step',
    intraOpThreads: job.threads,
  })
  const trainable = lora ? lora.adapters : weights
  const feeds = scoringFeeds(
    cfg,
    packRows(
      Array.from({ length: job.rows }, (_, r) => ({
        prompt: Array.from({ length: job.seq / 2 }, (_, t) => (r * 7919 + t * 31) % cfg.vocab_size),
        response: Array.from({ length: job.seq / 2 }, (_, t) => (r * 104729 + t * 17) % cfg.vocab_size),
      })),
      { padding: 'right', padId: 0 },
    ),
    'float32',
  )
  for (const [k, t] of trainable) feeds[k] = { dtype: 'float32', dims: t.shape, data: t.data }
  global.gc?.()
  const ready = process.memoryUsage().rss
  const times: number[] = []
  for (let i = 0; i < job.steps + 1; i++) {
    const start = performance.now()
    await session.run(feeds)
    if (i > 0) times.push(performance.now() - start)
  }
  await session.release()
  const peak = process.resourceUsage().maxRSS * 1024
  times.sort((a, b) => a - b)
  return {
    rss_ready_mb: mb(ready),
    peak_mb: mb(peak),
    activations_mb: mb(peak - ready),
    step_ms: Math.round(times[Math.floor(times.length / 2)]),
  }
}

const { values: args } = parseArgs({
  options: {
    job: { type: 'string' },
    shapes: { type: 'string', default: '50m,qwen2-0.5b-4l' },
    variants: { type: 'string', default: 'plain,checkpoint' },
    mode: { type: 'string', default: 'lora' },
    'vocab-chunks': { type: 'string' },
    layers: { type: 'string' },
    rows: { type: 'string', default: '4' },
    seq: { type: 'string', default: '256' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '2' },
  },
})

if (args.job) {
  console.log(JSON.stringify(await measure(JSON.parse(args.job) as Job)))
} else {
  for (const shape of args.shapes.split(',')) {
    for (const variant of args.variants.split(',')) {
      const job: Job = {
        shape,
        layers: args.layers ? Number(args.layers) : undefined,
        mode: args.mode as Job['mode'],
        checkpoint: variant === 'checkpoint',
        vocabChunks: args['vocab-chunks'] ? Number(args['vocab-chunks']) : undefined,
        rows: Number(args.rows),
        seq: Number(args.seq),
        threads: Number(args.threads),
        steps: Number(args.steps),
      }
      const out = execFileSync(
        process.execPath,
        [...process.execArgv, '--expose-gc', import.meta.filename, '--job', JSON.stringify(job)],
        { encoding: 'utf8', env: trainingProcessEnv(process.env), stdio: ['ignore', 'pipe', 'inherit'] },
      )
      console.log(JSON.stringify({ ...job, ...JSON.parse(out.trim().split('\n').at(-1)!) }))
    }
  }
}
