/**
 * The memory estimate against measured peaks: each shape and mode runs in a child process of its own
 * (test/helpers/policy-memory-probe.ts: load, score, reference score, two train steps, decode) and its
 * peak resident set is compared with estimatePolicyMemory's bytes.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { estimatePolicyMemory } from '../../src/model/memory-estimate.ts'
import { makeTinyModel, type TinyModelInfo } from '../../src/model/tiny.ts'
import type { ProbeSpec } from '../helpers/policy-memory-probe.ts'

const run = promisify(execFile)
const PROBE = path.join(import.meta.dirname, '../helpers/policy-memory-probe.ts')
/**
 * How far the estimate may be from the measured peak, as a fraction of the measured peak. Below it
 * is the dangerous side (a run admitted that then does not fit), above it only refuses runs that
 * would have fitted: the bounds differ.
 */
const TOLERANCE = { under: 0.15, over: 0.3 }

const SHAPES = {
  // a small vocabulary: activations and weights dominate
  narrow: {
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    vocab_size: 8192,
  },
  // a vocabulary above 32k: the chunked head (its allocator factors were fitted on another shape), GQA
  wide_vocab: {
    hidden_size: 192,
    intermediate_size: 512,
    num_hidden_layers: 3,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 40000,
  },
} as const
type ShapeName = keyof typeof SHAPES

let root: string
const models = new Map<ShapeName, TinyModelInfo>()
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'memory-estimate-'))
  for (const [name, overrides] of Object.entries(SHAPES)) {
    const p = overrides
    const info = await makeTinyModel(path.join(root, name), {
      seed: 3,
      overrides: { ...p, head_dim: p.hidden_size / p.num_attention_heads, tie_word_embeddings: false },
    })
    models.set(name as ShapeName, info)
  }
})
after(() => rm(root, { recursive: true, force: true }))

interface Case {
  shape: ShapeName
  lora: boolean
  checkpoint: boolean
  rows: number
  seq: number
  microBatches?: number
  /** bfloat16 AdamW moments. */
  bf16?: boolean
  /** bfloat16 frozen weights. */
  bf16Weights?: boolean
  /** float16 gradients. */
  f16Grads?: boolean
  /** Training sequences per shared prompt (prompt trees). */
  branches?: number
}

const CASES: Case[] = [
  { shape: 'narrow', lora: false, checkpoint: false, rows: 4, seq: 192 },
  { shape: 'narrow', lora: true, checkpoint: true, rows: 8, seq: 192 },
  // SSO's x- rows: three responses to one prompt, packed as one row of 32 + 3 × 160 tokens
  { shape: 'narrow', lora: false, checkpoint: false, rows: 6, seq: 192, branches: 3 },
  {
    shape: 'wide_vocab',
    lora: false,
    checkpoint: true,
    rows: 4,
    seq: 160,
    bf16: true,
  },
  {
    shape: 'narrow',
    lora: false,
    checkpoint: true,
    rows: 4,
    seq: 192,
    microBatches: 2,
    bf16: true,
    f16Grads: true,
  },
  {
    shape: 'wide_vocab',
    lora: true,
    checkpoint: false,
    rows: 6,
    seq: 128,
    microBatches: 2,
    bf16Weights: true,
  },
]

for (const c of CASES) {
  const label = `${c.shape} ${c.lora ? 'lora' : 'full'}${c.checkpoint ? ' checkpointed' : ''}${c.bf16 ? ' bf16-moments' : ''}${c.bf16Weights ? ' bf16-weights' : ''}${c.f16Grads ? ' f16-gradients' : ''}${c.branches ? ` prompt-trees of ${c.branches}` : ''}, ${c.rows}x${c.seq}`
  test(`estimate within -${TOLERANCE.under * 100}% and +${TOLERANCE.over * 100}% of the measured peak: ${label}`, {
    timeout: 120_000,
  }, async () => {
    const info = models.get(c.shape)!
    const promptTokens = 32
    const spec: ProbeSpec = {
      modelDir: info.dir,
      lora: c.lora,
      checkpoint: c.checkpoint,
      optimizerStateDtype: c.bf16 ? 'bfloat16' : 'float32',
      weightsDtype: c.bf16Weights ? 'bfloat16' : 'float32',
      gradientDtype: c.f16Grads ? 'float16' : 'float32',
      rows: c.rows,
      microBatches: c.microBatches ?? 1,
      branches: c.branches,
      promptTokens,
      seq: c.seq,
      vocab: Math.min(512, info.config.vocab_size),
    }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(spec)], {
      maxBuffer: 1 << 20,
    })
    const probe = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      peakBytes: number
      phases: Record<string, { rss: number; peak: number }>
    }
    const measured = probe.peakBytes
    const estimate = estimatePolicyMemory(
      info.config,
      {
        trainRows: c.rows,
        trainTrees: c.branches ? { rows: c.rows / c.branches, branches: c.branches } : undefined,
        batchRows: c.rows,
        seq: c.seq,
        promptTokens,
        checkpoint: c.checkpoint,
        accumulates: (c.microBatches ?? 1) > 1,
      },
      {
        lora: c.lora ? { rank: 16, alpha: 32, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } : undefined,
        optimizerStateDtype: spec.optimizerStateDtype,
        weightsDtype: spec.weightsDtype,
        gradientDtype: spec.gradientDtype,
      },
    )
    const error = (estimate.bytes - measured) / measured
    const mb = (b: number) => (b / 2 ** 20).toFixed(0)
    console.log(
      `${label}: estimate ${mb(estimate.bytes)} MB, measured ${mb(measured)} MB (${(error * 100).toFixed(1)}%)`,
      JSON.stringify(Object.fromEntries(Object.entries(estimate.parts).map(([k, v]) => [k, mb(v)]))),
      JSON.stringify(Object.fromEntries(Object.entries(probe.phases).map(([k, v]) => [k, mb(v.rss)]))),
    )
    assert.ok(
      error >= -TOLERANCE.under && error <= TOLERANCE.over,
      `${label}: estimate ${mb(estimate.bytes)} MB vs measured ${mb(measured)} MB`,
    )
  })
}
