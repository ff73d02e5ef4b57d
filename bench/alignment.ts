/**
 * Does SSO align a policy? A tiny model is SFT-trained on synthetic data in which the principle in the
 * system message decides the behaviour and plain prompts behave in a mix; then, from that same start,
 * SSO (3 iterations), the PBAA baseline and SSO without W run over several seeds. After each iteration
 * the policy is evaluated on held-out plain prompts (no principle): checker satisfaction rate and mean
 * response length; signal accuracy of each iteration's generated pairs is read from the run metrics.
 * Prints one JSON line per measurement and a summary line per variant.
 *
 *   node --import tsx bench/alignment.ts [--seeds 3] [--iterations 3] [--queries 48]
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { familyPrincipleSet, TASK_FAMILIES } from '../src/eval/families.ts'
import { evaluate, makeEvalItems } from '../src/eval/run-eval.ts'
import { syntheticSftCorpus } from '../src/eval/synthetic-corpus.ts'
import { makeTinyModel } from '../src/model/index.ts'
import { openModelPolicy, runTrainer } from '../src/sso/index.ts'
import { toJsonl } from '../src/sso/records.ts'
import { Rng } from '../src/sso/rng.ts'
import type { MetricsBatch, TrainerJob, TrainingMethod } from '../src/sso/trainer-interface.ts'

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '3' },
    iterations: { type: 'string', default: '3' },
    queries: { type: 'string', default: '48' },
    'sft-epochs': { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
  },
})
const SEEDS = Number(args.seeds)
const ITERATIONS = Number(args.iterations)
const QUERIES = Number(args.queries)

// concision is left out: its checker needs correct products, which a ~1M-parameter model does not
// learn in a short SFT, so it scored 0 for every variant and only diluted the comparison
const families = [TASK_FAMILIES.politeness, TASK_FAMILIES.format, TASK_FAMILIES.refusal]
const principleSet = familyPrincipleSet(families)
const featureOf = new Map(families.map((f) => [f.name, f.principle.feature]))
const EVAL_SAMPLING = { maxNewTokens: 40, temperature: 1, topP: 1, topK: 0, seed: 1234 }
const evalItems = makeEvalItems(families, 25, 99_999)

const emit = (line: Record<string, unknown>) => console.log(JSON.stringify(line))

const quiet = (onMetrics: (b: MetricsBatch) => void) => ({
  onMetrics,
  onEvent: () => {},
  onCheckpoint: () => {},
  control: () => 'continue' as const,
})

/** Plain queries of the training split, each tagged with its family's feature (the principle to use). */
async function writeQueries(path: string, seed: number): Promise<void> {
  const rng = Rng.fromSeed(seed)
  const rows = Array.from({ length: QUERIES }, (_, i) => {
    const f = families[i % families.length]
    return { prompt: f.makePrompt(rng), features: [featureOf.get(f.name)!] }
  })
  await writeFile(path, toJsonl(rows))
}

/** The checkpoint written at the end of iteration k (it opens iteration k + 1). */
async function iterationCheckpoint(runDir: string, k: number): Promise<string> {
  const dir = join(runDir, 'checkpoints')
  const name = (await readdir(dir)).find(
    (n) => n.endsWith(`-iter-${k + 1}-generate`) || n.endsWith(`-iter-${k + 1}-done`),
  )
  if (!name) throw new Error(`no end-of-iteration-${k} checkpoint in ${dir}`)
  return join(dir, name, 'policy')
}

async function evaluateModel(modelDir: string, seed: number, state?: string) {
  const policy = await openModelPolicy({
    modelDir,
    device: 'cpu',
    finetuning: 'full',
    lora: { rank: 8, alpha: 16, targets: ['q_proj'] },
    optimizer: { lr: 0, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxGradNorm: 0 },
    maxPromptTokens: 256,
    seed,
  })
  try {
    if (state) await policy.load(state)
    return await evaluate(policy, families, evalItems, { ...EVAL_SAMPLING, seed: EVAL_SAMPLING.seed + seed })
  } finally {
    await policy.dispose()
  }
}

const SSO_HP = {
  loss_type: 'ipo',
  beta: 0.2,
  theta_g: 0.5,
  alpha: 0.66,
  lr: 2e-4,
  weight_decay: 0,
  schedule: 'cosine',
  warmup_ratio: 0.1,
  batch_size: 8,
  epochs: 1,
  max_new_tokens: 40,
  generation_batch_size: 16,
  concision_probability: 0,
  features_per_query: 1,
  checkpoint_every: 0,
  iterations: ITERATIONS,
}

const VARIANTS: { name: string; method: TrainingMethod; hp: Record<string, unknown> }[] = [
  { name: 'sso', method: 'sso', hp: SSO_HP },
  { name: 'pbaa', method: 'pbaa', hp: SSO_HP },
  { name: 'sso_no_w', method: 'sso', hp: { ...SSO_HP, use_w: false } },
]

async function main(): Promise<void> {
  const started = performance.now()
  const root = await mkdtemp(join(tmpdir(), 'sso-alignment-'))
  try {
    const base = join(root, 'tiny')
    await makeTinyModel(base, { seed: 1 })
    // 1. SFT start
    const corpus = join(root, 'sft.jsonl')
    await writeFile(
      corpus,
      toJsonl(syntheticSftCorpus(families, { perFamily: 60, plainGoodRate: 0.3, seed: 5 })),
    )
    const sftDir = join(root, 'sft')
    const sftJob: TrainerJob = {
      runId: 'sft',
      method: 'sft',
      modelDir: base,
      datasetPaths: [corpus],
      hyperparameters: {
        lr: 3e-3,
        epochs: Number(args['sft-epochs']),
        batch_size: 16,
        weight_decay: 0,
        schedule: 'cosine',
      },
      device: 'cpu',
      seed: 1,
      outputDir: sftDir,
    }
    let sftLoss = Number.NaN
    await runTrainer(
      sftJob,
      quiet((b) => (sftLoss = b.values.loss ?? sftLoss)),
    )
    const start = join(sftDir, 'final')
    const startEval = await evaluateModel(start, 0)
    emit({
      name: 'alignment/start',
      sft_final_loss: sftLoss,
      satisfaction: startEval.satisfaction,
      mean_length: startEval.meanLength,
      by_family: startEval.byFamily,
      seconds: (performance.now() - started) / 1000,
    })

    // 2. variants x seeds, evaluated after every iteration
    const summary: Record<string, { satisfaction: number[]; length: number[] }> = {}
    for (const variant of VARIANTS) {
      for (let seed = 1; seed <= SEEDS; seed++) {
        const runDir = join(root, `${variant.name}-${seed}`)
        await mkdir(runDir, { recursive: true })
        const queries = join(runDir, 'queries.jsonl')
        await writeQueries(queries, 1000 + seed)
        const signal: Record<number, number> = {}
        const job: TrainerJob = {
          runId: `${variant.name}-${seed}`,
          method: variant.method,
          modelDir: start,
          principleSet,
          datasetPaths: [queries],
          hyperparameters: variant.hp,
          device: 'cpu',
          seed,
          outputDir: runDir,
        }
        await runTrainer(
          job,
          quiet((b) => {
            if (b.iteration !== undefined && b.values.signal_accuracy !== undefined)
              signal[b.iteration] = b.values.signal_accuracy
          }),
        )
        // evaluate each iteration's end state: iteration k's policy is the start of k+1
        for (let k = 1; k <= ITERATIONS; k++) {
          const report = await evaluateModel(start, seed, await iterationCheckpoint(runDir, k))
          emit({
            name: 'alignment/iteration',
            variant: variant.name,
            seed,
            iteration: k,
            satisfaction: report.satisfaction,
            delta_vs_start: report.satisfaction - startEval.satisfaction,
            mean_length: report.meanLength,
            signal_accuracy: signal[k],
            by_family: report.byFamily,
          })
          if (k === ITERATIONS) {
            summary[variant.name] ??= { satisfaction: [], length: [] }
            summary[variant.name].satisfaction.push(report.satisfaction)
            summary[variant.name].length.push(report.meanLength)
          }
        }
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    for (const [variant, s] of Object.entries(summary)) {
      emit({
        name: 'alignment/summary',
        variant,
        seeds: SEEDS,
        satisfaction: mean(s.satisfaction),
        gain_points_vs_start: 100 * (mean(s.satisfaction) - startEval.satisfaction),
        mean_length: mean(s.length),
        length_ratio_vs_start: mean(s.length) / startEval.meanLength,
      })
    }
    emit({ name: 'alignment/total', seconds: (performance.now() - started) / 1000 })
  } finally {
    if (!args.keep) await rm(root, { recursive: true, force: true })
  }
}

await main()
