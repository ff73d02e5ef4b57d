import assert from 'node:assert/strict'
import { test } from 'node:test'
import { REAL_SHAPES } from '../../bench/real-shapes.ts'
import { parameterCount, parseLlamaConfig } from '../../src/model/config.ts'

// The parameter counts the model cards and safetensors headers of these checkpoints give.
const PUBLISHED: Record<keyof typeof REAL_SHAPES, number> = {
  '0.5b': 494_032_768,
  '1b': 1_235_814_400,
  '1.5b': 1_543_714_304,
  '3b': 3_085_938_688,
}

test('the benches’ real shapes have the published parameter counts of their checkpoints', () => {
  for (const [key, shape] of Object.entries(REAL_SHAPES)) {
    const parsed = parseLlamaConfig(shape.config)
    assert.ok('config' in parsed, `${shape.name}: ${parsed.problems.join('; ')}`)
    assert.equal(parameterCount(parsed.config), PUBLISHED[key as keyof typeof REAL_SHAPES], shape.name)
  }
})

test('Llama-3.2-1B keeps its llama3 RoPE scaling', () => {
  const llama = parseLlamaConfig(REAL_SHAPES['1b'].config)
  assert.ok('config' in llama)
  assert.deepEqual(llama.config.rope_scaling, {
    rope_type: 'llama3',
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  })
})
