/**
 * The safetensors format, read and written directly: 8-byte little-endian header length, a JSON
 * header `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then raw
 * little-endian data. Floating tensors come out as Float32Array, or in a half type kept as its raw
 * 16-bit patterns (HalfTensor) when asked; either way read straight into their final arrays.
 */
import { randomBytes } from 'node:crypto'
import { type FileHandle, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { ModelLoadError } from '../errors.ts'
import { isJsonObject } from '../json-object.ts'

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

export type HalfDType = 'float16' | 'bfloat16'
/** How weights are kept in memory: float32, or a half type as raw bits (2 bytes per value). */
export type StorageDType = 'float32' | HalfDType

/** A tensor of float16 or bfloat16 values as their raw bit patterns. */
export interface HalfTensor {
  shape: number[]
  dtype: HalfDType
  data: Uint16Array
}

export type StoredTensor = FloatTensor | HalfTensor

export const isHalf = (t: StoredTensor): t is HalfTensor => 'dtype' in t

export const storageOf = (t: StoredTensor): StorageDType => (isHalf(t) ? t.dtype : 'float32')

const FILE_DTYPE: Readonly<Record<StorageDType, SafetensorsDType>> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
}

/** Half bits -> float32 values, into `out`. */
export function decodeHalf(dtype: HalfDType, bits: Uint16Array, out: Float32Array): Float32Array {
  if (dtype === 'bfloat16') {
    const u = new Uint32Array(out.buffer, out.byteOffset, out.length)
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = float16ToNumber(bits[i])
  }
  return out
}

/** float32 values -> half bits rounded to nearest even, into `out`. */
export function encodeHalf(dtype: HalfDType, values: Float32Array, out: Uint16Array): Uint16Array {
  const round = dtype === 'bfloat16' ? numberToBfloat16 : numberToFloat16
  for (let i = 0; i < values.length; i++) out[i] = round(values[i])
  return out
}

/** The values as float32: the tensor itself when it is float32, a decoded copy otherwise. */
export function toFloatTensor(t: StoredTensor): FloatTensor {
  if (!isHalf(t)) return t
  return { shape: [...t.shape], data: decodeHalf(t.dtype, t.data, new Float32Array(t.data.length)) }
}

/** A copy of the tensor's values stored as `dtype` (rounded to nearest even when narrower). */
export function toStorage(t: StoredTensor, dtype: StorageDType): StoredTensor {
  if (storageOf(t) === dtype) return { ...t, shape: [...t.shape], data: t.data.slice() } as StoredTensor
  const values = toFloatTensor(t).data
  if (dtype === 'float32') return { shape: [...t.shape], data: values === t.data ? values.slice() : values }
  return { shape: [...t.shape], dtype, data: encodeHalf(dtype, values, new Uint16Array(values.length)) }
}

/** Overwrites a stored tensor's values with float32 ones (rounded into its own dtype). */
export function assignValues(t: StoredTensor, values: Float32Array): void {
  if (isHalf(t)) encodeHalf(t.dtype, values, t.data)
  else t.data.set(values)
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

/** The format's own limit on the header: its reference reader refuses a larger one. */
const MAX_HEADER_BYTES = 100_000_000

const isOffset = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0

/** A header entry with the fields a tensor needs, of the right types (the file is user data). */
function isTensorInfo(value: unknown): value is TensorInfo {
  const t = value as Partial<TensorInfo> | null
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.dtype === 'string' &&
    Array.isArray(t.shape) &&
    t.shape.every(isOffset) &&
    Array.isArray(t.data_offsets) &&
    t.data_offsets.length === 2 &&
    t.data_offsets.every(isOffset)
  )
}

async function readHeader(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat()
  const lenBuf = Buffer.alloc(8)
  await fh.read(lenBuf, 0, 8, 0)
  const headerLen = Number(lenBuf.readBigUInt64LE(0))
  if (size < 8 || headerLen > size - 8 || headerLen > MAX_HEADER_BYTES) {
    throw new ModelLoadError(
      `${file}: not a safetensors file (header length ${headerLen}, file size ${size}; headers are at most ${MAX_HEADER_BYTES} bytes)`,
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
  if (!isJsonObject(parsed)) throw new ModelLoadError(`${file}: the safetensors header is not a JSON object`)
  const dataStart = 8 + headerLen
  const dataSize = size - dataStart
  const tensors: Record<string, TensorInfo> = {}
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') continue
    if (!isTensorInfo(value))
      throw new ModelLoadError(
        `${file}: tensor '${name}' needs a dtype, a shape of non-negative integers and two data_offsets`,
      )
    const info = value
    const [begin, end] = info.data_offsets
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
 * Where a float32 tensor is read to instead of a new array: memory that already holds its final
 * home (a host optimizer's), so a checkpoint is never held twice while it loads; undefined: a new array.
 */
export type WeightDestination = (name: string) => Float32Array | undefined

/**
 * Reads the named tensors (all when `names` is omitted) of a safetensors file, as float32 or in
 * `storage`. Reads tensor by tensor, each straight into its final array when the file holds it in
 * that dtype already (otherwise through one temporary buffer of that tensor alone); float32 ones
 * into the memory `into` gives for them.
 */
export async function readSafetensors(
  file: string,
  names?: Iterable<string>,
): Promise<Map<string, FloatTensor>>
export async function readSafetensors(
  file: string,
  names: Iterable<string> | undefined,
  storage: StorageDType,
  into?: WeightDestination,
): Promise<Map<string, StoredTensor>>
export async function readSafetensors(
  file: string,
  names?: Iterable<string>,
  storage: StorageDType = 'float32',
  into?: WeightDestination,
): Promise<Map<string, StoredTensor>> {
  const fh = await open(file, 'r')
  try {
    const header = await readHeader(fh, file)
    const out = new Map<string, StoredTensor>()
    for (const name of names ?? Object.keys(header.tensors)) {
      const info = header.tensors[name]
      if (!info) throw new ModelLoadError(`${file}: no tensor '${name}'`)
      if (!FLOAT_DTYPES.includes(info.dtype as SafetensorsDType)) {
        throw new ModelLoadError(
          `${file}: tensor '${name}' has dtype ${info.dtype}; supported: ${FLOAT_DTYPES.join(', ')}`,
        )
      }
      const [begin, end] = info.data_offsets
      const dtype = info.dtype as SafetensorsDType
      const shape = [...info.shape]
      const n = (end - begin) / BYTES[dtype]
      const position = header.dataStart + begin
      const target = storage === 'float32' ? into?.(name) : undefined
      if (target && target.length !== n) {
        throw new ModelLoadError(
          `${file}: tensor '${name}' has ${n} elements, its destination ${target.length}`,
        )
      }
      if (dtype === FILE_DTYPE[storage]) {
        // Already in the wanted dtype: read into the final (aligned) array, no other copy.
        const data = target ?? (storage === 'float32' ? new Float32Array(n) : new Uint16Array(n))
        await readFully(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position, file)
        out.set(
          name,
          storage === 'float32'
            ? { shape, data: data as Float32Array }
            : { shape, dtype: storage, data: data as Uint16Array },
        )
        continue
      }
      const raw = new Uint8Array(end - begin)
      await readFully(fh, raw, position, file)
      const values = toFloat32(raw.buffer, dtype, target)
      out.set(
        name,
        storage === 'float32'
          ? { shape, data: values }
          : { shape, dtype: storage, data: encodeHalf(storage, values, new Uint16Array(n)) },
      )
    }
    return out
  } finally {
    await fh.close()
  }
}

/** Reads `into.length` bytes at `position`, in chunks (one read() call is capped near 2 GiB). */
async function readFully(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  const CHUNK = 1 << 30
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fh.read(into, done, Math.min(CHUNK, into.length - done), position + done)
    if (bytesRead === 0)
      throw new ModelLoadError(`${file}: unexpected end of file at byte ${position + done}`)
    done += bytesRead
  }
}

/** Decodes a tensor's bytes (in aligned memory of their own) to float32, into `out` when given. */
function toFloat32(aligned: ArrayBuffer, dtype: SafetensorsDType, out?: Float32Array): Float32Array {
  const n = aligned.byteLength / BYTES[dtype]
  switch (dtype) {
    case 'F32': {
      const values = new Float32Array(aligned)
      out?.set(values)
      return out ?? values
    }
    case 'F64': {
      const values = out ?? new Float32Array(n)
      values.set(new Float64Array(aligned))
      return values
    }
    case 'BF16':
      return decodeHalf('bfloat16', new Uint16Array(aligned), out ?? new Float32Array(n))
    case 'F16':
      return decodeHalf('float16', new Uint16Array(aligned), out ?? new Float32Array(n))
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

function encode(t: StoredTensor, dtype: SafetensorsDType): Uint8Array {
  if (FILE_DTYPE[storageOf(t)] === dtype)
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  const data = toFloatTensor(t).data
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
  tensors: ReadonlyMap<string, StoredTensor>,
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
    for (const name of names) await fh.write(encode(tensors.get(name)!, dtype))
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
