/** `sso eval`: held-out evaluation of a model folder on the checkable task families. */
import { TASK_FAMILIES, type TaskFamilyName } from '../../eval/families.ts'
import { evaluate, makeEvalItems } from '../../eval/run-eval.ts'
import { parseHyperparameters } from '../../sso/hyperparameters.ts'
import type { Device } from '../../sso/trainer-interface.ts'
import { type Command, integerOption, positionalArgs, stringOption, UsageError } from '../command.ts'
import { formatTable, printJson } from '../output.ts'

const FAMILY_NAMES = Object.keys(TASK_FAMILIES) as TaskFamilyName[]
const DEVICES: Device[] = ['auto', 'cpu', 'webgpu', 'cuda']

export const evalCommand: Command = {
  path: ['eval'],
  summary: 'evaluate a model folder on held-out checkable tasks (satisfaction per principle family)',
  args: '<model-dir>',
  options: {
    families: {
      type: 'string',
      arg: 'a,b',
      description: `task families (default: all of ${FAMILY_NAMES.join(', ')})`,
    },
    'per-family': { type: 'string', arg: 'n', default: '20', description: 'held-out prompts per family' },
    seed: { type: 'string', arg: 'n', default: '1234', description: 'seed of the prompts and of sampling' },
    'max-new-tokens': { type: 'string', arg: 'n', default: '64', description: 'generation length limit' },
    temperature: { type: 'string', arg: 't', default: '0', description: 'sampling temperature (0 = greedy)' },
    device: { type: 'string', arg: 'device', default: 'auto', description: DEVICES.join(', ') },
    json: { type: 'boolean', description: 'print the report as JSON' },
  },
  details: `Each family's checker scores how well a response follows the family's good principle, without
labels from training. Compare a model before and after a run (e.g. <run output>/final).`,
  async run(ctx) {
    const [modelDir] = positionalArgs(ctx, this, ['<model-dir>'])
    const names = (stringOption(ctx, 'families', this, false)?.split(',') ?? FAMILY_NAMES).map((n) =>
      n.trim(),
    )
    const unknown = names.filter((n) => !FAMILY_NAMES.includes(n as TaskFamilyName))
    if (unknown.length > 0) {
      throw new UsageError(
        `unknown task family ${unknown.join(', ')}; families: ${FAMILY_NAMES.join(', ')}`,
        this,
      )
    }
    const device = stringOption(ctx, 'device', this) as Device
    if (!DEVICES.includes(device)) throw new UsageError(`--device must be one of ${DEVICES.join(', ')}`, this)
    const temperature = Number(ctx.values.temperature)
    if (!(temperature >= 0))
      throw new UsageError(`--temperature must be a number >= 0, got '${ctx.values.temperature}'`, this)
    const seed = integerOption(ctx, 'seed', this) ?? 1234
    const perFamily = integerOption(ctx, 'per-family', this) ?? 20
    const maxNewTokens = integerOption(ctx, 'max-new-tokens', this) ?? 64
    if (perFamily < 1 || maxNewTokens < 1)
      throw new UsageError('--per-family and --max-new-tokens must be >= 1', this)

    const families = names.map((n) => TASK_FAMILIES[n as TaskFamilyName])
    const hp = parseHyperparameters({})
    // Loaded here: the model and engine stack is only needed by this command.
    const { openModelPolicy } = await import('../../sso/model-adapter.ts')
    const policy = await openModelPolicy({
      modelDir,
      device,
      finetuning: 'full',
      lora: hp.lora,
      optimizer: { lr: hp.lr, betas: hp.adam_betas, eps: hp.adam_eps, weightDecay: 0, maxGradNorm: 0 },
      maxPromptTokens: hp.max_prompt_tokens,
      seed,
    })
    try {
      const items = makeEvalItems(families, perFamily, seed)
      const report = await evaluate(policy, families, items, {
        maxNewTokens,
        temperature,
        topP: 1,
        topK: 0,
        seed,
      })
      if (ctx.values.json) printJson({ model: modelDir, device: policy.device, ...report })
      else {
        const rows = Object.entries(report.byFamily).map(([family, s]) => ({
          family,
          satisfaction: s.toFixed(3),
        }))
        rows.push({ family: 'all', satisfaction: report.satisfaction.toFixed(3) })
        process.stdout.write(formatTable(rows, ['family', 'satisfaction']))
        process.stdout.write(
          `${report.n} prompts on ${policy.device}, mean response length ${report.meanLength.toFixed(1)} characters, ${(100 * report.repetition).toFixed(0)}% repeat a pair of words\n`,
        )
      }
      return 0
    } finally {
      await policy.dispose()
    }
  },
}
