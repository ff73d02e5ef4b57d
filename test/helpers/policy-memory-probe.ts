/**
 * Child process of the memory-estimate test: loads a policy, scores with it and its reference, runs
 * two training steps and decodes, then prints its peak resident set (VmHWM) as JSON. One process per
 * measurement, so no earlier allocation inflates the peak.
 * argv[2]: JSON of ProbeSpec.
 */
import { neg, reduceMean } from '../../src/engine/index.ts'
import type { PolicyLoss } from '../../src/model/graphs.ts'
import { Policy } from '../../src/model/policy.ts'
import { Random } from '../../src/model/random.ts'

export interface ProbeSpec {
  modelDir: string
  lora: boolean
  checkpoint: boolean
  optimizerStateDtype: 'float32' | 'bfloat16'
  gradientDtype: 'float32' | 'float16'
  /** Storage of LoRA's frozen base. */
  weightsDtype: 'float32' | 'bfloat16'
  /** Rows of one training micro-batch and of the scoring batch. */
  rows: number
  /** Micro-batches per training step. */
  microBatches: number
  /** Training rows share prompts this many to a prompt (prompt trees, packed as such); 1 by default. */
  branches?: number
  promptTokens: number
  seq: number
  vocab: number
}

const spec = JSON.parse(process.argv[2]) as ProbeSpec
/** Resident and peak resident bytes after each phase: where the peak comes from when an estimate misses. */
const phases: Record<string, { rss: number; peak: number }> = {}
function mark(phase: string): void {
  phases[phase] = { rss: process.memoryUsage.rss(), peak: process.resourceUsage().maxRSS * 1024 }
}
const policy = await Policy.load(spec.modelDir, {
  lora: spec.lora ? { rank: 16, alpha: 32, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } : undefined,
  checkpoint: spec.checkpoint,
  adamw: { stateDtype: spec.optimizerStateDtype, gradDtype: spec.gradientDtype },
  weightsDtype: spec.weightsDtype,
})
mark('loaded')
const rng = new Random(7)
const ids = (n: number) => Array.from({ length: n }, () => rng.nextUint32() % spec.vocab)
const rows = Array.from({ length: spec.rows }, () => ({
  prompt: ids(spec.promptTokens),
  response: ids(spec.seq - spec.promptTokens),
}))
const sft: PolicyLoss = { name: 'sft', build: (g, logps) => ({ loss: neg(g, reduceMean(g, logps.mean)) }) }
await policy.logprobs(rows, 'policy')
mark('policy_scored')
await policy.freezeReference()
await policy.logprobs(rows, 'reference')
await policy.releaseReference() // as a run does once its reference log-probs are scored
mark('reference_scored')
const branches = spec.branches ?? 1
const trainRows = rows.map((r, i) => ({ ...r, prompt: rows[i - (i % branches)].prompt }))
const micro = Array.from({ length: spec.microBatches }, () => ({ rows: trainRows, maxBranches: branches }))
for (let i = 1; i <= 2; i++) {
  await policy.trainStep(micro, { lr: 1e-4, loss: sft })
  mark(`step${i}`)
}
await policy.generate(
  Array.from({ length: spec.rows }, () => 'The quick brown fox jumps over the lazy dog.'),
  { maxNewTokens: 8, seed: 1, temperature: 1, topP: 1, topK: 0 },
)
mark('generated')
process.stdout.write(`${JSON.stringify({ peakBytes: phases.generated.peak, phases })}\n`)
await policy.dispose()
