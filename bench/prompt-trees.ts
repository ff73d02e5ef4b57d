/**
 * SSO v1's training step with each example's seven sequences in rows of their own and packed as
 * prompt trees (x, x+ and x- each once, their responses as branches: src/model/batch.ts), on the tiny
 * presets with random weights. One JSON line per preset: step times (median of alternating runs),
 * token slots per step (rows × padded length), and `speedup` (own rows / trees, > 1: trees faster).
 *
 *   node --import tsx bench/prompt-trees.ts [--presets tiny,10m] [--examples 8] [--prompt 40]
 *     [--principle 70] [--response 45] [--steps 5] [--threads 1]
 *
 * The lengths (tokens) are the query, the principle's system message added to it, and each response.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { packRows, type TokenRow } from '../src/model/batch.ts'
import { Policy, type TrainBatch } from '../src/model/policy.ts'
import { Random } from '../src/model/random.ts'
import { makeTinyModel, type TinyPreset } from '../src/model/tiny.ts'
import { effectiveHyperparameters } from '../src/sso/hyperparameters.ts'
import { objectiveRoles, ROLES, sharedPrompts } from '../src/sso/loss-types.ts'
import { objectiveLoss, refInput } from '../src/sso/model-adapter.ts'
import { median } from './child-process.ts'

const { values: args } = parseArgs({
  options: {
    presets: { type: 'string', default: 'tiny,10m' },
    examples: { type: 'string', default: '8' },
    prompt: { type: 'string', default: '40' },
    principle: { type: 'string', default: '70' },
    response: { type: 'string', default: '45' },
    steps: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
  },
})
const examples = Number(args.examples)
const [promptTokens, principleTokens, responseTokens] = [args.prompt, args.principle, args.response].map(
  Number,
)

/** One example's seven sequences in ROLES order: x, x+ and x- with y+, y- and y0 (random tokens). */
function exampleRows(rng: Random, vocab: number): Record<(typeof ROLES)[number], TokenRow> {
  const ids = (n: number) => Array.from({ length: n }, () => 3 + (rng.nextUint32() % (vocab - 3)))
  const x = ids(promptTokens)
  const [good, bad] = [
    [...ids(principleTokens), ...x],
    [...ids(principleTokens), ...x],
  ]
  const [chosen, rejected, raw] = [ids(responseTokens), ids(responseTokens), ids(responseTokens)]
  return {
    plain_chosen: { prompt: x, response: chosen },
    plain_rejected: { prompt: x, response: rejected },
    good_chosen: { prompt: good, response: chosen },
    good_rejected: { prompt: good, response: rejected },
    bad_raw: { prompt: bad, response: raw },
    bad_chosen: { prompt: bad, response: chosen },
    bad_rejected: { prompt: bad, response: rejected },
  }
}

async function measure(preset: TinyPreset): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'prompt-trees-'))
  try {
    const info = await makeTinyModel(dir, { seed: 1, preset })
    const policy = await Policy.load(dir, { intraOpThreads: Number(args.threads) })
    const rng = new Random(2)
    const perExample = Array.from({ length: examples }, () => exampleRows(rng, info.config.vocab_size))
    const rows = ROLES.flatMap((role) => perExample.map((e) => e[role]))
    const hp = effectiveHyperparameters('sso', {})
    const feeds: TrainBatch['feeds'] = Object.fromEntries(
      objectiveRoles('sso', hp).refRoles.flatMap((role) =>
        (['sum', 'mean'] as const).map((kind) => [
          refInput(role, kind),
          { dtype: 'float32' as const, dims: [examples], data: new Float32Array(examples).fill(-40) },
        ]),
      ),
    )
    const loss = objectiveLoss('sso', hp, examples)
    const layouts = { own_rows: 1, trees: sharedPrompts(ROLES).branches }
    const times: Record<keyof typeof layouts, number[]> = { own_rows: [], trees: [] }
    // a warm-up step each, then alternating steps: drift on a shared machine hits both alike
    for (let i = 0; i <= Number(args.steps); i++) {
      for (const [layout, maxBranches] of Object.entries(layouts) as [keyof typeof layouts, number][]) {
        const start = performance.now()
        await policy.trainStep({ rows, feeds, maxBranches }, { lr: 1e-6, loss })
        if (i > 0) times[layout].push((performance.now() - start) / 1000)
      }
    }
    await policy.dispose()
    const [own, trees] = [median(times.own_rows), median(times.trees)]
    // token slots a step computes: rows × padded length
    const slots = (maxBranches: number) => {
      const batch = packRows(rows, { padding: 'right', padId: 0, maxBranches })
      return batch.rows * batch.seq
    }
    return {
      name: 'prompt_trees/sso_step',
      preset,
      parameters: info.parameters,
      examples,
      lengths: { prompt: promptTokens, principle: principleTokens, response: responseTokens },
      threads: Number(args.threads),
      own_rows_s: own,
      trees_s: trees,
      token_slots: { own_rows: slots(1), trees: slots(layouts.trees) },
      speedup: own / trees,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

for (const preset of args.presets.split(',') as TinyPreset[])
  console.log(JSON.stringify(await measure(preset)))
