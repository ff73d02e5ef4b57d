/** `sso make-tiny-model`: a seeded random Llama-family model in Hugging Face layout. */
import { makeTinyModel, TINY_PRESETS, type TinyPreset } from '../../model/index.ts'
import { type Command, integerOption, positionalArgs, stringOption, UsageError } from '../command.ts'
import { printJson } from '../output.ts'

const PRESETS = Object.keys(TINY_PRESETS) as TinyPreset[]

export const makeTinyModelCommand: Command = {
  path: ['make-tiny-model'],
  summary: 'write a seeded random tiny model (config, safetensors, tokenizer, chat template)',
  args: '<dir>',
  options: {
    seed: { type: 'string', arg: 'n', default: '0', description: 'weight initialisation seed' },
    preset: { type: 'string', arg: 'name', default: 'tiny', description: `size: ${PRESETS.join(', ')}` },
    json: { type: 'boolean', description: 'print the model summary as JSON' },
  },
  details: `Sizes: ${PRESETS.map((p) => `${p} (hidden ${TINY_PRESETS[p].hidden_size}, ${TINY_PRESETS[p].num_hidden_layers} layers)`).join(', ')}.
The folder is written atomically; register it with the service under MODELS_ROOT or use it in sso train.`,
  async run(ctx) {
    const [dir] = positionalArgs(ctx, this, ['<dir>'])
    const preset = stringOption(ctx, 'preset', this) as TinyPreset
    if (!PRESETS.includes(preset)) {
      throw new UsageError(`--preset must be one of ${PRESETS.join(', ')}, got '${preset}'`, this)
    }
    const seed = integerOption(ctx, 'seed', this) ?? 0
    const info = await makeTinyModel(dir, { seed, preset })
    const summary = { dir: info.dir, preset, seed, parameters: info.parameters, bytes: info.bytes }
    if (ctx.values.json) printJson(summary)
    else {
      const mb = (info.bytes / 2 ** 20).toFixed(1)
      process.stdout.write(
        `wrote ${preset} model (${info.parameters.toLocaleString('en')} parameters, ${mb} MiB) to ${info.dir}\n`,
      )
    }
    return 0
  },
}
