/**
 * Writes a seeded random tiny model (Hugging Face layout) for tests and the demo.
 * Usage: node --import tsx scripts/make-tiny-model.ts <dir> [--seed N] [--preset tiny|10m|50m]
 */
import { parseArgs } from 'node:util'
import { makeTinyModel, TINY_PRESETS, type TinyPreset } from '../src/model/tiny.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: 'string', default: '0' }, preset: { type: 'string', default: 'tiny' } },
})
const presets = Object.keys(TINY_PRESETS)
if (positionals.length !== 1 || !presets.includes(values.preset)) {
  console.error(`usage: make-tiny-model <dir> [--seed N] [--preset ${presets.join('|')}]`)
  process.exit(2)
}
const info = await makeTinyModel(positionals[0], {
  seed: Number(values.seed),
  preset: values.preset as TinyPreset,
})
console.log(JSON.stringify({ dir: info.dir, parameters: info.parameters, bytes: info.bytes }))
