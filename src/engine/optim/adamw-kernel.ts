/**
 * AdamW over arrays in WebAssembly memories (wasm SIMD, multi-memory), in place: one pass reads
 * p, g, m, v and writes p, m, v. An onnxruntime graph needs ~13 elementwise passes plus copies of
 * every new state tensor for the same update, which makes it memory-bound at several ns/param.
 *
 * The module imports four memories laid out alike, p (params, float32), g (gradients: float32, or
 * float16 at half the byte offsets), m and v (moments: float32, or bfloat16 at half the byte
 * offsets), so that one instance spans up to 4 GiB per array. It is assembled here from its opcodes
 * (no toolchain needed). Its functions:
 *   adamw(at, bytes, β1, c1, β2, c2, stepSize, ε̂, decay, seed)   float32 moments
 *   adamw_bf16(at, bytes, β1, c1, β2, c2, stepSize, ε̂, decay, seed)   bfloat16 moments
 *     m ← β1·m + c1·g;  v ← β2·v + c2·g·g;  p ← decay·p − stepSize·m / (√v + ε̂)
 *   adamw_g16, adamw_bf16_g16: the same over float16 gradients (decoded exactly to float32)
 *   sumsq(at, bytes) → Σ g², squared and summed in float64; sumsq_g16 over float16 gradients
 * over the float32 byte range [at, at + bytes) of p (16-byte aligned; `bytes` a multiple of 16, of
 * 32 where any array is 16-bit), and for sumsq the byte range of g itself. The float32 kernels ignore
 * `seed`; the bfloat16 ones round the new moments to bfloat16 stochastically from a xorshift stream
 * seeded with it (odd): round-to-nearest would freeze v, whose relative change per step, 1 − β2, is
 * below half a bfloat16 ulp.
 */

const uleb = (n: number): number[] => {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}
const sleb = (n: number): number[] => {
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b]
    out.push(b | 0x80)
  }
}
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'ascii')]

const I32 = 0x7f
const F32 = 0x7d
const F64 = 0x7c
const V128 = 0x7b
const get = (i: number) => [0x20, i]
const set = (i: number) => [0x21, i]
const i32 = (n: number) => [0x41, ...sleb(n)]
const simd = (op: number) => [0xfd, ...uleb(op)]
const I32_ADD = 0x6a
const I32_SHR_U = 0x76
const I32_GE_U = 0x4f
const F64_ADD = 0xa0
const V_AND = simd(0x4e)
const V_OR = simd(0x50)
const V_XOR = simd(0x51)
const F32X4_SPLAT = simd(0x13)
const I32X4_SPLAT = simd(0x11)
const I32X4_SHL = simd(0xab)
const I32X4_SHR_U = simd(0xad)
const I32X4_ADD = simd(0xae)
const F32X4_SQRT = simd(0xe3)
const F32X4_ADD = simd(0xe4)
const F32X4_SUB = simd(0xe5)
const F32X4_MUL = simd(0xe6)
const F32X4_DIV = simd(0xe7)
const F64X2_PROMOTE_LOW = simd(0x5f)
const F64X2_ADD = simd(0xf0)
const F64X2_MUL = simd(0xf2)
const F64X2_LANE = (lane: number) => [...simd(0x21), lane]
const shuffle = (lanes: number[]) => [...simd(0x0d), ...lanes]
const v128Const = (lanes: number[]) => [...simd(0x0c), ...new Uint8Array(Uint32Array.from(lanes).buffer)]

// The imported memories, by index.
const [P_MEM, G_MEM, M_MEM, V_MEM] = [0, 1, 2, 3]
/** memarg: 16-byte alignment, memory `mem` (multi-memory form), constant offset. */
const memarg = (mem: number, offset: number) => [0x44, mem, ...uleb(offset)]
const load = (mem: number, addr: number, offset = 0) => [...get(addr), ...simd(0x00), ...memarg(mem, offset)]
const store = (mem: number, addr: number, value: number[], offset = 0) => [
  ...get(addr),
  ...value,
  ...simd(0x0b),
  ...memarg(mem, offset),
]

// Parameters of the update functions: 0 at, 1 bytes (i32); 2-8 β1, c1, β2, c2, stepSize, ε̂, decay
// (f32); 9 seed (i32). Locals: 10 the float32 byte index, 11 the 16-bit byte index (i32); then
// v128s: 12-18 the splatted scalars, a gradient, two halves of m and of v, the packed m and v,
// the random stream, the 16-bit mask, eight float16 gradients and a scratch value.
const [AT, BYTES, SEED, I, J] = [0, 1, 9, 10, 11]
const [B1, C1, B2, C2, STEP, EPS, DECAY] = [12, 13, 14, 15, 16, 17, 18]
const [G, M0, M1, V0, V1, MRAW, VRAW, R, MASK, GRAW, SCRATCH] = [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
const UPDATE_PARAMS = [I32, I32, F32, F32, F32, F32, F32, F32, F32, I32]
const UPDATE_LOCALS = vec([
  [2, I32],
  [18, V128],
])

const splat4 = (lane: number) => v128Const([lane, lane, lane, lane])
/** 2^112 as float32 bits: float16 bits moved into float32's exponent and mantissa fields read 2^-112 too small. */
const TWO_POW_112 = 0x77800000
/**
 * float16 → float32, exact for every finite value, subnormals included: the low or high four
 * 16-bit lanes of `raw`, magnitude bits shifted into place and scaled by 2^112, the sign put back.
 */
const decodeHalf = (raw: number, scratch: number, high: boolean) => [
  ...[...get(raw), ...simd(high ? 0xaa : 0xa9), ...set(scratch)],
  ...[
    ...get(scratch),
    ...splat4(0x7fff),
    ...V_AND,
    ...i32(13),
    ...I32X4_SHL,
    ...splat4(TWO_POW_112),
    ...F32X4_MUL,
  ],
  ...[...get(scratch), ...splat4(0x8000), ...V_AND, ...i32(16), ...I32X4_SHL, ...V_OR],
]

/** m ← β1·m + c1·g, v ← β2·v + c2·g·g into locals `m`, `v`; then p ← decay·p − stepSize·m / (√v + ε̂) at I + offset. */
const adamWLanes = (mOld: number[], vOld: number[], m: number, v: number, offset: number) => [
  ...[...get(B1), ...mOld, ...F32X4_MUL, ...get(C1), ...get(G), ...F32X4_MUL, ...F32X4_ADD, ...set(m)],
  ...[...get(B2), ...vOld, ...F32X4_MUL],
  ...[...get(C2), ...get(G), ...F32X4_MUL, ...get(G), ...F32X4_MUL, ...F32X4_ADD, ...set(v)],
  ...store(
    P_MEM,
    I,
    [
      ...[...get(DECAY), ...load(P_MEM, I, offset), ...F32X4_MUL],
      ...[...get(STEP), ...get(m), ...F32X4_MUL, ...get(v), ...F32X4_SQRT, ...get(EPS), ...F32X4_ADD],
      ...F32X4_DIV,
      ...F32X4_SUB,
    ],
    offset,
  ),
]

/** Splats the scalars, then runs `body` for I = at, at + stride, … below at + bytes. */
const updateLoop = (stride: number, body: number[]) => [
  ...[2, 3, 4, 5, 6, 7, 8].flatMap((param, k) => [...get(param), ...F32X4_SPLAT, ...set(B1 + k)]),
  ...[...get(AT), ...set(I), ...get(AT), ...get(BYTES), I32_ADD, ...set(BYTES)], // bytes ← end
  ...[0x02, 0x40, 0x03, 0x40], // block, loop
  ...[...get(I), ...get(BYTES), I32_GE_U, 0x0d, 1], // br_if to the block's end
  ...body,
  ...[...get(I), ...i32(stride), I32_ADD, ...set(I)],
  ...[0x0c, 0, 0x0b, 0x0b, 0x0b], // br loop; end loop; end block; end function
]

const HALF_INDEX = [...get(I), ...i32(1), I32_SHR_U, ...set(J)]
/** Loads the eight float16 gradients of a 32-byte float32 block into GRAW (J holds the 16-bit byte index). */
const LOAD_HALF_GRADIENTS = [...load(G_MEM, J), ...set(GRAW)]
/** The gradient's four lanes at I + 16·high into G: float32, or decoded from GRAW. */
const gradientLanes = (half: boolean, high: boolean) => [
  ...(half ? decodeHalf(GRAW, SCRATCH, high) : load(G_MEM, I, high ? 16 : 0)),
  ...set(G),
]

/** float32 moments: four lanes at a time, or eight (two float32 blocks) over float16 gradients. */
const adamwBody = (half: boolean) =>
  updateLoop(half ? 32 : 16, [
    ...(half ? [...HALF_INDEX, ...LOAD_HALF_GRADIENTS] : []),
    ...(half ? [false, true] : [false]).flatMap((high) => {
      const offset = high ? 16 : 0
      return [
        ...gradientLanes(half, high),
        ...adamWLanes(load(M_MEM, I, offset), load(V_MEM, I, offset), M0, V0, offset),
        ...store(M_MEM, I, get(M0), offset),
        ...store(V_MEM, I, get(V0), offset),
      ]
    }),
  ])

// bfloat16 → float32: the low or high four 16-bit lanes, zero-extended and moved to the top.
const widen = (raw: number, high: boolean) => [
  ...get(raw),
  ...simd(high ? 0xaa : 0xa9),
  ...i32(16),
  ...I32X4_SHL,
]
// float32 pair → bfloat16 x8: the top 16 bits of every lane (exact in an unsigned saturating narrow),
// after adding 16 random low bits.
const I16X8_NARROW_I32X4_U = simd(0x86)
const xorshift = [13, 17, 5].flatMap((shift, k) => [
  ...[...get(R), ...get(R), ...i32(shift), ...(k === 1 ? I32X4_SHR_U : I32X4_SHL), ...V_XOR, ...set(R)],
])
const topHalf = [...i32(16), ...I32X4_SHR_U]
const roundedPair = (low: number, high: number) => [
  ...xorshift,
  ...[...get(low), ...get(R), ...get(MASK), ...V_AND, ...I32X4_ADD, ...topHalf],
  ...[...get(high), ...get(R), ...i32(16), ...I32X4_SHR_U, ...I32X4_ADD, ...topHalf],
  ...I16X8_NARROW_I32X4_U,
]

const adamwBf16Body = (half: boolean) => [
  ...[
    ...get(SEED),
    ...I32X4_SPLAT,
    ...v128Const([0, 0x9e3779b8, 0x3c6ef370, 0xdaa66d28]),
    ...V_XOR,
    ...set(R),
  ],
  ...[...i32(0xffff), ...I32X4_SPLAT, ...set(MASK)],
  ...updateLoop(32, [
    ...HALF_INDEX,
    ...[...load(M_MEM, J), ...set(MRAW), ...load(V_MEM, J), ...set(VRAW)],
    ...(half ? LOAD_HALF_GRADIENTS : []),
    ...gradientLanes(half, false),
    ...adamWLanes(widen(MRAW, false), widen(VRAW, false), M0, V0, 0),
    ...gradientLanes(half, true),
    ...adamWLanes(widen(MRAW, true), widen(VRAW, true), M1, V1, 16),
    ...store(M_MEM, J, roundedPair(M0, M1)),
    ...store(V_MEM, J, roundedPair(V0, V1)),
  ]),
]

// sumsq: parameters 0 at, 1 bytes (i32); locals 2 the byte index (i32), then v128s: 3 and 4 the
// float64 sums of the low and high lane pairs, 5 a float32 x4, 6 a promoted pair, 7 the loaded
// bytes (float16 gradients), 8 a scratch value.
const [X, XBYTES, K, LOW, HIGH, XV, PAIR, RAW, SUMSQ_SCRATCH] = [0, 1, 2, 3, 4, 5, 6, 7, 8]
const I8X16_HIGH_HALF = shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15])
const square = [...F64X2_PROMOTE_LOW, ...set(PAIR), ...get(PAIR), ...get(PAIR), ...F64X2_MUL]
/** LOW and HIGH += the squares of XV's low and high lane pairs. */
const ADD_SQUARES = [
  ...[...get(LOW), ...get(XV), ...square, ...F64X2_ADD, ...set(LOW)],
  ...[...get(HIGH), ...get(XV), ...get(XV), ...I8X16_HIGH_HALF, ...square, ...F64X2_ADD, ...set(HIGH)],
]
const sumsqBody = (half: boolean) => {
  const loaded = [...get(X), ...get(K), I32_ADD, ...simd(0x00), ...memarg(G_MEM, 0)]
  const squares = half
    ? [
        ...[...loaded, ...set(RAW)],
        ...[false, true].flatMap((high) => [
          ...decodeHalf(RAW, SUMSQ_SCRATCH, high),
          ...set(XV),
          ...ADD_SQUARES,
        ]),
      ]
    : [...loaded, ...set(XV), ...ADD_SQUARES]
  return [
    ...[0x02, 0x40, 0x03, 0x40],
    ...[...get(K), ...get(XBYTES), I32_GE_U, 0x0d, 1],
    ...squares,
    ...[...get(K), ...i32(16), I32_ADD, ...set(K)],
    ...[0x0c, 0, 0x0b, 0x0b],
    ...[...get(LOW), ...get(HIGH), ...F64X2_ADD, ...set(LOW)],
    ...[...get(LOW), ...F64X2_LANE(0), ...get(LOW), ...F64X2_LANE(1), F64_ADD, 0x0b],
  ]
}
const SUMSQ_LOCALS = vec([
  [1, I32],
  [6, V128],
])

const MEMORIES = ['p', 'g', 'm', 'v']
/** The exported functions: name, type index (0 update, 1 sumsq), locals and body. */
const FUNCTIONS: [string, number, number[], number[]][] = [
  ['adamw', 0, UPDATE_LOCALS, adamwBody(false)],
  ['adamw_bf16', 0, UPDATE_LOCALS, adamwBf16Body(false)],
  ['sumsq', 1, SUMSQ_LOCALS, sumsqBody(false)],
  ['adamw_g16', 0, UPDATE_LOCALS, adamwBody(true)],
  ['adamw_bf16_g16', 0, UPDATE_LOCALS, adamwBf16Body(true)],
  ['sumsq_g16', 1, SUMSQ_LOCALS, sumsqBody(true)],
]

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const code = (locals: number[], body: number[]) => {
    const fn = [...locals, ...body]
    return [...uleb(fn.length), ...fn]
  }
  const types = [
    [0x60, ...vec(UPDATE_PARAMS.map((t) => [t])), 0],
    [0x60, ...vec([[I32], [I32]]), ...vec([[F64]])],
  ]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec(MEMORIES.map((m) => [...name('env'), ...name(m), 0x02, 0x00, ...uleb(1)]))),
    ...section(3, vec(FUNCTIONS.map(([, type]) => [type]))),
    ...section(7, vec(FUNCTIONS.map(([fn], index) => [...name(fn), 0x00, index]))),
    ...section(10, vec(FUNCTIONS.map(([, , locals, body]) => code(locals, body)))),
  ])
}

let compiled: WebAssembly.Module | undefined

export type AdamWKernel = (
  at: number,
  bytes: number,
  beta1: number,
  c1: number,
  beta2: number,
  c2: number,
  stepSize: number,
  epsHat: number,
  decay: number,
  seed: number,
) => void

export type SumOfSquaresKernel = (at: number, bytes: number) => number

export interface AdamWMemories {
  p: WebAssembly.Memory
  g: WebAssembly.Memory
  m: WebAssembly.Memory
  v: WebAssembly.Memory
}

export interface AdamWKernels {
  adamw: AdamWKernel
  sumsq: SumOfSquaresKernel
}

/**
 * Instantiates the kernels over four memories of at least one 64 KiB page each, for moments and
 * gradients stored as given.
 */
export function adamWKernels(
  memories: AdamWMemories,
  storage: { moments: 'float32' | 'bfloat16'; gradients: 'float32' | 'float16' },
): AdamWKernels {
  compiled ??= new WebAssembly.Module(moduleBytes())
  const { exports } = new WebAssembly.Instance(compiled, { env: { ...memories } })
  const g16 = storage.gradients === 'float16' ? '_g16' : ''
  return {
    adamw: exports[`adamw${storage.moments === 'bfloat16' ? '_bf16' : ''}${g16}`] as AdamWKernel,
    sumsq: exports[`sumsq${g16}`] as SumOfSquaresKernel,
  }
}
