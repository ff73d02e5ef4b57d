/**
 * AdamW over arrays in WebAssembly memories (wasm SIMD, multi-memory), in place: one pass reads
 * p, g, m, v and writes p, m, v. An onnxruntime graph needs ~13 elementwise passes plus copies of
 * every new state tensor for the same update, which makes it memory-bound at several ns/param.
 *
 * The module imports four memories laid out alike, p (params, float32), g (gradients, float32),
 * m and v (moments: float32, or bfloat16 at half the byte offsets), so that one instance spans
 * up to 4 GiB per array. It is assembled here from its opcodes (no toolchain needed). Its functions:
 *   adamw(at, bytes, β1, c1, β2, c2, stepSize, ε̂, decay, seed)   float32 moments
 *   adamw_bf16(at, bytes, β1, c1, β2, c2, stepSize, ε̂, decay, seed)   bfloat16 moments
 *     m ← β1·m + c1·g;  v ← β2·v + c2·g·g;  p ← decay·p − stepSize·m / (√v + ε̂)
 *   sumsq(at, bytes) → Σ g², squared and summed in float64
 * over the float32 byte range [at, at + bytes) of p and g (16-byte aligned; `bytes` a multiple of
 * 16, of 32 for adamw_bf16). adamw ignores `seed`; adamw_bf16 rounds the new moments to bfloat16
 * stochastically from a xorshift stream seeded with it (odd): round-to-nearest would freeze v,
 * whose relative change per step, 1 − β2, is below half a bfloat16 ulp.
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

// Parameters of both update functions: 0 at, 1 bytes (i32); 2-8 β1, c1, β2, c2, stepSize, ε̂, decay
// (f32); 9 seed (i32). Locals: 10 the float32 byte index, 11 the bfloat16 byte index (i32); then
// v128s: 12-18 the splatted scalars, a gradient, two halves of m and of v, the packed m and v,
// the random stream and the 16-bit mask.
const [AT, BYTES, SEED, I, J] = [0, 1, 9, 10, 11]
const [B1, C1, B2, C2, STEP, EPS, DECAY] = [12, 13, 14, 15, 16, 17, 18]
const [G, M0, M1, V0, V1, MRAW, VRAW, R, MASK] = [19, 20, 21, 22, 23, 24, 25, 26, 27]
const UPDATE_PARAMS = [I32, I32, F32, F32, F32, F32, F32, F32, F32, I32]
const UPDATE_LOCALS = vec([
  [2, I32],
  [16, V128],
])

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

const ADAMW_BODY = updateLoop(16, [
  ...[...load(G_MEM, I), ...set(G)],
  ...adamWLanes(load(M_MEM, I), load(V_MEM, I), M0, V0, 0),
  ...store(M_MEM, I, get(M0)),
  ...store(V_MEM, I, get(V0)),
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

const ADAMW_BF16_BODY = [
  ...[
    ...get(SEED),
    ...I32X4_SPLAT,
    ...v128Const([0, 0x9e3779b8, 0x3c6ef370, 0xdaa66d28]),
    ...V_XOR,
    ...set(R),
  ],
  ...[...i32(0xffff), ...I32X4_SPLAT, ...set(MASK)],
  ...updateLoop(32, [
    ...[...get(I), ...i32(1), I32_SHR_U, ...set(J)],
    ...[...load(M_MEM, J), ...set(MRAW), ...load(V_MEM, J), ...set(VRAW)],
    ...[...load(G_MEM, I), ...set(G)],
    ...adamWLanes(widen(MRAW, false), widen(VRAW, false), M0, V0, 0),
    ...[...load(G_MEM, I, 16), ...set(G)],
    ...adamWLanes(widen(MRAW, true), widen(VRAW, true), M1, V1, 16),
    ...store(M_MEM, J, roundedPair(M0, M1)),
    ...store(V_MEM, J, roundedPair(V0, V1)),
  ]),
]

// sumsq: parameters 0 at, 1 bytes (i32); locals 2 the byte index (i32), then v128s: 3 and 4 the
// float64 sums of the low and high lane pairs, 5 the loaded float32 x4, 6 a promoted pair.
const [X, XBYTES, K, LOW, HIGH, XV, PAIR] = [0, 1, 2, 3, 4, 5, 6]
const I8X16_HIGH_HALF = shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15])
const square = [...F64X2_PROMOTE_LOW, ...set(PAIR), ...get(PAIR), ...get(PAIR), ...F64X2_MUL]
const SUMSQ_BODY = [
  ...[0x02, 0x40, 0x03, 0x40],
  ...[...get(K), ...get(XBYTES), I32_GE_U, 0x0d, 1],
  ...[...get(X), ...get(K), I32_ADD, ...simd(0x00), ...memarg(G_MEM, 0), ...set(XV)],
  ...[...get(LOW), ...get(XV), ...square, ...F64X2_ADD, ...set(LOW)],
  ...[...get(HIGH), ...get(XV), ...get(XV), ...I8X16_HIGH_HALF, ...square, ...F64X2_ADD, ...set(HIGH)],
  ...[...get(K), ...i32(16), I32_ADD, ...set(K)],
  ...[0x0c, 0, 0x0b, 0x0b],
  ...[...get(LOW), ...get(HIGH), ...F64X2_ADD, ...set(LOW)],
  ...[...get(LOW), ...F64X2_LANE(0), ...get(LOW), ...F64X2_LANE(1), F64_ADD, 0x0b],
]
const SUMSQ_LOCALS = vec([
  [1, I32],
  [4, V128],
])

const MEMORIES = ['p', 'g', 'm', 'v']

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
    ...section(3, vec([[0], [0], [1]])),
    ...section(
      7,
      vec([
        [...name('adamw'), 0x00, 0],
        [...name('adamw_bf16'), 0x00, 1],
        [...name('sumsq'), 0x00, 2],
      ]),
    ),
    ...section(
      10,
      vec([
        code(UPDATE_LOCALS, ADAMW_BODY),
        code(UPDATE_LOCALS, ADAMW_BF16_BODY),
        code(SUMSQ_LOCALS, SUMSQ_BODY),
      ]),
    ),
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

/** Instantiates the kernels over four memories of at least one 64 KiB page each. */
export function adamWKernels(memories: AdamWMemories): {
  adamw: AdamWKernel
  adamwBf16: AdamWKernel
  sumsq: SumOfSquaresKernel
} {
  compiled ??= new WebAssembly.Module(moduleBytes())
  const { exports } = new WebAssembly.Instance(compiled, { env: { ...memories } })
  return {
    adamw: exports.adamw as AdamWKernel,
    adamwBf16: exports.adamw_bf16 as AdamWKernel,
    sumsq: exports.sumsq as SumOfSquaresKernel,
  }
}
