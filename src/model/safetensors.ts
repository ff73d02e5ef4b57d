/**
 * The safetensors format, read and written directly: 8-byte little-endian header length, a JSON
 * header `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then raw
 * little-endian data. Floating tensors come out as Float32Array whatever their stored dtype.
 */
import { randomBytes } from 'node:crypto'
import { type FileHandle, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { ModelLoadError } from '../errors.ts'

export const FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const
export type SafetensorsDType = (typeof FLOAT_DTYPES)[number]

const BYTES: Readonly<Record<SafetensorsDType, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8 }

export interface TensorInfo {
  dtype: string
  shape: number[]
  /** Byte range inside the data section. */
  data_offsets: [number, number]
}

export interface SafetensorsHeader {
  tensors: Record<string, TensorInfo>
  metadata: Record<string, string>
  /** File offset of the data section. */
  dataStart: number
}

export interface FloatTensor {
  shape: number[]
  data: Float32Array
}

/** Reads and checks the header of a safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await open(file, 'r')
  try {
    return await readHeader(fh, file)
  } finally {
    await fh.close()
  }
}

async function readHeader(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat()
  const lenBuf = Buffer.alloc(8)
  await fh.read(lenBuf, 0, 8, 0)
  const headerLen = Number(lenBuf.readBigUInt64LE(0))
  if (size < 8 || headerLen > size - 8) {
    throw new ModelLoadError(
      `${file}: not a safetensors file (header length ${headerLen}, file size ${size})`,
    )
  }
  const headerBuf = Buffer.alloc(headerLen)
  await fh.read(headerBuf, 0, headerLen, 8)
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(headerBuf.toString('utf8'))
  } catch (err) {
    throw new ModelLoadError(`${file}: the safetensors header is not valid JSON`, undefined, { cause: err })
  }
  const dataStart = 8 + headerLen
  const dataSize = size - dataStart
  const tensors: Record<string, TensorInfo> = {}
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') continue
    const info = value as TensorInfo
    const [begin, end] = info.data_offsets ?? []
    const want = info.shape.reduce((a, b) => a * b, 1) * (BYTES[info.dtype as SafetensorsDType] ?? 0)
    if (!(begin >= 0 && end <= dataSize && end - begin === want) && info.dtype in BYTES) {
      throw new ModelLoadError(
        `${file}: tensor '${name}' ${info.dtype} [${info.shape}] has data_offsets [${begin}, ${end}] (data section ${dataSize} bytes)`,
      )
    }
    tensors[name] = info
  }
  return { tensors, metadata: (parsed.__metadata__ as Record<string, string>) ?? {}, dataStart }
}

/**
 * Reads the named tensors (all when `names` is omitted) of a safetensors file as float32.
 * Reads tensor by tensor, so a shard never sits in memory twice.
 */
export async function readSafetensors(
  file: string,
  names?: Iterable<string>,
): Promise<Map<string, FloatTensor>> {
  const fh = await open(file, 'r')
  try {
    const header = await readHeader(fh, file)
    const out = new Map<string, FloatTensor>()
    for (const name of names ?? Object.keys(header.tensors)) {
      const info = header.tensors[name]
      if (!info) throw new ModelLoadError(`${file}: no tensor '${name}'`)
      if (!FLOAT_DTYPES.includes(info.dtype as SafetensorsDType)) {
        throw new ModelLoadError(
          `${file}: tensor '${name}' has dtype ${info.dtype}; supported: ${FLOAT_DTYPES.join(', ')}`,
        )
      }
      const [begin, end] = info.data_offsets
      const raw = Buffer.alloc(end - begin)
      await fh.read(raw, 0, raw.length, header.dataStart + begin)
      out.set(name, { shape: [...info.shape], data: toFloat32(raw, info.dtype as SafetensorsDType) })
    }
    return out
  } finally {
    await fh.close()
  }
}

function toFloat32(raw: Buffer, dtype: SafetensorsDType): Float32Array {
  const n = raw.length / BYTES[dtype]
  // Copy into aligned memory: the data section need not be aligned inside the file buffer.
  const aligned = new Uint8Array(raw).buffer
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned)
    case 'F64':
      return Float32Array.from(new Float64Array(aligned))
    case 'BF16': {
      const bits = new Uint16Array(aligned)
      const out = new Uint32Array(n)
      for (let i = 0; i < n; i++) out[i] = bits[i] << 16
      return new Float32Array(out.buffer)
    }
    case 'F16': {
      const bits = new Uint16Array(aligned)
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = float16ToNumber(bits[i])
      return out
    }
  }
}

export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** float32 -> bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function numberToBfloat16(x: number): number {
  f32[0] = x
  const bits = u32[0]
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff
}

/** float32 -> IEEE half bits, rounding to nearest even, with subnormals, overflow to infinity. */
export function numberToFloat16(x: number): number {
  f32[0] = x
  const bits = u32[0]
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  let mant = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    const rest = mant & ((1 << shift) - 1)
    let m = mant >>> shift
    if (rest > half || (rest === half && m & 1)) m++
    return sign | m
  }
  const rest = mant & 0x1fff
  let m = mant >>> 13
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++
    if (m === 0x400) {
      m = 0
      e++
      if (e >= 31) return sign | 0x7c00
    }
  }
  return sign | (e << 10) | m
}

function encode(data: Float32Array, dtype: SafetensorsDType): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    case 'F64':
      return new Uint8Array(Float64Array.from(data).buffer)
    case 'BF16':
      return new Uint8Array(Uint16Array.from(data, numberToBfloat16).buffer)
    case 'F16':
      return new Uint8Array(Uint16Array.from(data, numberToFloat16).buffer)
  }
}

export interface WriteOptions {
  dtype?: SafetensorsDType
  metadata?: Record<string, string>
}

/**
 * Writes tensors (sorted by name) to `file` atomically: a temporary file in the same folder is
 * written, fsynced and renamed over the target, so readers see the old file or the new one.
 */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, FloatTensor>,
  opts: WriteOptions = {},
): Promise<number> {
  const dtype = opts.dtype ?? 'F32'
  const names = [...tensors.keys()].sort()
  const header: Record<string, unknown> = {}
  if (opts.metadata) header.__metadata__ = opts.metadata
  let offset = 0
  for (const name of names) {
    const t = tensors.get(name)!
    const bytes = t.data.length * BYTES[dtype]
    const want = t.shape.reduce((a, b) => a * b, 1)
    if (want !== t.data.length) {
      throw new ModelLoadError(
        `cannot write '${name}': shape [${t.shape}] needs ${want} values, has ${t.data.length}`,
      )
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }
    offset += bytes
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8)
  const headerBuf = Buffer.from(json, 'utf8')
  const lenBuf = Buffer.alloc(8)
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length))

  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'w')
  try {
    await fh.write(lenBuf)
    await fh.write(headerBuf)
    for (const name of names) await fh.write(encode(tensors.get(name)!.data, dtype))
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  await rename(tmp, file)
  return 8 + headerBuf.length + offset
}
