import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import {
  float16ToNumber,
  numberToBfloat16,
  numberToFloat16,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/model/safetensors.ts'

let dir: string
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'safetensors-'))
})
after(() => rm(dir, { recursive: true, force: true }))

const values = Float32Array.from([0, 1, -1, 0.5, 3.140625, -2.5e-3, 65504, 1e-7, 1 / 3, -7.75])
const tensors = new Map([
  ['b.weight', { shape: [2, 5], data: values }],
  ['a.bias', { shape: [3], data: Float32Array.from([1.5, -2, 4]) }],
])

test('F32 round trip is exact and keeps metadata', async () => {
  const file = path.join(dir, 'f32.safetensors')
  await writeSafetensors(file, tensors, { metadata: { format: 'pt' } })
  const header = await readSafetensorsHeader(file)
  assert.deepEqual(header.metadata, { format: 'pt' })
  assert.equal(header.dataStart % 8, 0)
  assert.deepEqual(Object.keys(header.tensors), ['a.bias', 'b.weight'])
  const back = await readSafetensors(file)
  assert.deepEqual(back.get('b.weight')?.shape, [2, 5])
  assert.deepEqual([...back.get('b.weight')!.data], [...values])
  assert.deepEqual([...back.get('a.bias')!.data], [1.5, -2, 4])
})

test('BF16 and F16 round trips are within their precision', async () => {
  for (const [dtype, relTol] of [
    ['BF16', 2 ** -8],
    ['F16', 2 ** -11],
  ] as const) {
    const file = path.join(dir, `${dtype}.safetensors`)
    await writeSafetensors(file, tensors, { dtype })
    const header = await readSafetensorsHeader(file)
    assert.equal(header.tensors['b.weight'].dtype, dtype)
    const back = (await readSafetensors(file)).get('b.weight')!.data
    values.forEach((v, i) => {
      const tol = dtype === 'F16' && Math.abs(v) < 6.1e-5 ? 2 ** -24 : Math.abs(v) * relTol
      assert.ok(Math.abs(back[i] - v) <= tol, `${dtype}[${i}]: ${back[i]} vs ${v}`)
    })
  }
})

test('float32 tensors are read straight into the memory a destination gives, at an offset, from any file dtype', async () => {
  for (const dtype of ['F32', 'BF16'] as const) {
    const file = path.join(dir, `into-${dtype}.safetensors`)
    await writeSafetensors(file, tensors, { dtype })
    const memory = new Float32Array(32).fill(-1)
    const home = memory.subarray(8, 18)
    const back = await readSafetensors(file, undefined, 'float32', (name) =>
      name === 'b.weight' ? home : undefined,
    )
    assert.equal(back.get('b.weight')!.data, home, `${dtype}: the destination itself is the tensor's data`)
    assert.deepEqual([...home], [...(await readSafetensors(file)).get('b.weight')!.data])
    assert.ok(memory.subarray(0, 8).every((x) => x === -1) && memory.subarray(18).every((x) => x === -1))
    assert.notEqual(back.get('a.bias')!.data.buffer, memory.buffer)
    await assert.rejects(
      readSafetensors(file, undefined, 'float32', () => new Float32Array(4)),
      /tensor 'a.bias' has 3 elements, its destination 4/,
    )
  }
})

test('half-precision conversions round to nearest even and keep specials', () => {
  assert.equal(numberToFloat16(1), 0x3c00)
  assert.equal(numberToFloat16(65504), 0x7bff)
  assert.equal(numberToFloat16(1e6), 0x7c00)
  assert.equal(numberToFloat16(2 ** -24), 0x0001)
  assert.equal(numberToFloat16(-0), 0x8000)
  assert.ok(Number.isNaN(float16ToNumber(numberToFloat16(Number.NaN))))
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
  assert.equal(numberToFloat16(1 + 2 ** -11), 0x3c00)
  assert.equal(numberToBfloat16(1), 0x3f80)
  assert.equal(numberToBfloat16(1 + 2 ** -8), 0x3f80)
  assert.equal(numberToBfloat16(1 + 3 * 2 ** -8), 0x3f82)
  for (let h = 0; h < 0x7c00; h += 37) assert.equal(numberToFloat16(float16ToNumber(h)), h)
})

test('a file whose offsets do not fit is rejected with the tensor named', async () => {
  const file = path.join(dir, 'bad.safetensors')
  await writeSafetensors(file, tensors)
  const bytes = await readFile(file)
  await writeFile(file, bytes.subarray(0, bytes.length - 8))
  await assert.rejects(readSafetensors(file), /tensor 'b\.weight' F32 \[2,5\] has data_offsets/)
})

test('a malformed header is a load error naming what is wrong, not a crash', async () => {
  const file = path.join(dir, 'malformed.safetensors')
  /** A file of `header` (with `claimed` as its length field when given) and `data` zero bytes. */
  const write = async (header: string, data = 0, claimed?: number) => {
    const length = Buffer.alloc(8)
    length.writeBigUInt64LE(BigInt(claimed ?? Buffer.byteLength(header)))
    await writeFile(file, Buffer.concat([length, Buffer.from(header), Buffer.alloc(data)]))
  }
  await write('[1, 2]')
  await assert.rejects(readSafetensorsHeader(file), /the safetensors header is not a JSON object/)
  const entry = /tensor 'w' needs a dtype, a shape of non-negative integers and two data_offsets/
  for (const w of [
    '5',
    '{"dtype":"F32","data_offsets":[0,4]}',
    '{"dtype":"F32","shape":"4","data_offsets":[0,4]}',
  ]) {
    await write(`{"w": ${w}}`, 4)
    await assert.rejects(readSafetensorsHeader(file), entry, w)
  }
  await write('{"w": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4)
  await assert.rejects(readSafetensorsHeader(file), entry)
  // A length field beyond the format's limit is refused before anything that size is allocated.
  await write('{}', 0, 150_000_000)
  await truncate(file, 150_000_100) // sparse: the file is as long as its length field says
  await assert.rejects(readSafetensorsHeader(file), /headers are at most 100000000 bytes/)
})
