/**
 * AdamW over float32 arrays in WebAssembly memory, 4 lanes at a time (wasm SIMD), in place: one pass
 * reads p, g, m, v and writes p, m, v. An onnxruntime graph needs ~13 elementwise passes plus copies
 * of every new state tensor for the same update, which makes it memory-bound at several ns/param.
 *
 * The module is assembled here from its opcodes (no toolchain needed). Its functions:
 *   adamw(p, g, m, v, bytes, β1, c1, β2, c2, stepSize, ε̂, decay)
 *     m ← β1·m + c1·g;  v ← β2·v + c2·g·g;  p ← decay·p − stepSize·m / (√v + ε̂)
 *   sumsq(x, bytes) → Σ x², squared and summed in float64
 * with byte offsets (16-byte aligned) and `bytes` a multiple of 16.
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
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'ascii')]

const I32 = 0x7f
const F32 = 0x7d
const F64 = 0x7c
const V128 = 0x7b
const get = (i: number) => [0x20, i]
const set = (i: number) => [0x21, i]
const simd = (op: number) => [0xfd, ...uleb(op)]
const I32_ADD = 0x6a
const I32_GE_U = 0x4f
const V_LOAD = simd(0x00)
const V_STORE = simd(0x0b)
const F32X4_SPLAT = simd(0x13)
const F32X4_SQRT = simd(0xe3)
const F32X4_ADD = simd(0xe4)
const F32X4_SUB = simd(0xe5)
const F32X4_MUL = simd(0xe6)
const F32X4_DIV = simd(0xe7)
const F64X2_PROMOTE_LOW = simd(0x5f)
const F64X2_ADD = simd(0xf0)
const F64X2_MUL = simd(0xf2)
const F64X2_LANE = (lane: number) => [...simd(0x21), lane]
const I8X16_HIGH_HALF = [...simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]
const MEMARG = [4, 0] // 16-byte alignment, offset 0

// Parameters 0-4: p, g, m, v, bytes (i32); 5-11: β1, c1, β2, c2, stepSize, ε̂, decay (f32).
// Locals: 12 the byte index (i32); 13 g, 14 m, 15 v (v128); 16-22 the splatted scalars (v128).
const [P, G, M, V, BYTES, I, GV, MV, VV] = [0, 1, 2, 3, 4, 12, 13, 14, 15]
const [B1, C1, B2, C2, STEP, EPS, DECAY] = [16, 17, 18, 19, 20, 21, 22]
const at = (ptr: number) => [...get(ptr), ...get(I), I32_ADD]

const BODY = [
  ...[5, 6, 7, 8, 9, 10, 11].flatMap((param, k) => [...get(param), ...F32X4_SPLAT, ...set(B1 + k)]),
  ...[0x02, 0x40, 0x03, 0x40], // block, loop
  ...get(I),
  ...get(BYTES),
  I32_GE_U,
  ...[0x0d, 1], // br_if to the block's end
  ...at(G),
  ...V_LOAD,
  ...MEMARG,
  ...set(GV),
  // m ← β1·m + c1·g
  ...[
    ...get(B1),
    ...at(M),
    ...V_LOAD,
    ...MEMARG,
    ...F32X4_MUL,
    ...get(C1),
    ...get(GV),
    ...F32X4_MUL,
    ...F32X4_ADD,
  ],
  ...set(MV),
  ...[...at(M), ...get(MV), ...V_STORE, ...MEMARG],
  // v ← β2·v + c2·g·g
  ...[...get(B2), ...at(V), ...V_LOAD, ...MEMARG, ...F32X4_MUL],
  ...[...get(C2), ...get(GV), ...F32X4_MUL, ...get(GV), ...F32X4_MUL, ...F32X4_ADD],
  ...set(VV),
  ...[...at(V), ...get(VV), ...V_STORE, ...MEMARG],
  // p ← decay·p − stepSize·m / (√v + ε̂)
  ...at(P),
  ...[...get(DECAY), ...at(P), ...V_LOAD, ...MEMARG, ...F32X4_MUL],
  ...[
    ...get(STEP),
    ...get(MV),
    ...F32X4_MUL,
    ...get(VV),
    ...F32X4_SQRT,
    ...get(EPS),
    ...F32X4_ADD,
    ...F32X4_DIV,
  ],
  ...F32X4_SUB,
  ...[...V_STORE, ...MEMARG],
  ...[...get(I), 0x41, 16, I32_ADD, ...set(I)], // i += 16
  ...[0x0c, 0, 0x0b, 0x0b, 0x0b], // br loop; end loop; end block; end function
]

// sumsq: parameters 0 x, 1 bytes (i32); locals 2 the byte index (i32), then v128s: 3 and 4 the
// float64 sums of the low and high lane pairs, 5 the loaded float32 x4, 6 a promoted pair.
const [X, XBYTES, J, LOW, HIGH, XV, PAIR] = [0, 1, 2, 3, 4, 5, 6]
const square = [...F64X2_PROMOTE_LOW, ...set(PAIR), ...get(PAIR), ...get(PAIR), ...F64X2_MUL]
const SUMSQ_BODY = [
  ...[0x02, 0x40, 0x03, 0x40],
  ...[...get(J), ...get(XBYTES), I32_GE_U, 0x0d, 1],
  ...[...get(X), ...get(J), I32_ADD, ...V_LOAD, ...MEMARG, ...set(XV)],
  ...[...get(LOW), ...get(XV), ...square, ...F64X2_ADD, ...set(LOW)],
  ...[...get(HIGH), ...get(XV), ...get(XV), ...I8X16_HIGH_HALF, ...square, ...F64X2_ADD, ...set(HIGH)],
  ...[...get(J), 0x41, 16, I32_ADD, ...set(J)],
  ...[0x0c, 0, 0x0b, 0x0b],
  ...[...get(LOW), ...get(HIGH), ...F64X2_ADD, ...set(LOW)],
  ...[...get(LOW), ...F64X2_LANE(0), ...get(LOW), ...F64X2_LANE(1), 0xa0, 0x0b], // f64.add; end
]

const ADAMW_PARAMS = [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32]

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const adamw = [
    ...vec([
      [1, I32],
      [10, V128],
    ]),
    ...BODY,
  ]
  const sumsq = [
    ...vec([
      [1, I32],
      [4, V128],
    ]),
    ...SUMSQ_BODY,
  ]
  const types = [
    [0x60, ...vec(ADAMW_PARAMS.map((t) => [t])), 0],
    [0x60, ...vec([[I32], [I32]]), ...vec([[F64]])],
  ]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([[0], [1]])),
    ...section(
      7,
      vec([
        [...name('adamw'), 0x00, 0],
        [...name('sumsq'), 0x00, 1],
      ]),
    ),
    ...section(
      10,
      vec([
        [...uleb(adamw.length), ...adamw],
        [...uleb(sumsq.length), ...sumsq],
      ]),
    ),
  ])
}

let compiled: WebAssembly.Module | undefined

export type AdamWKernel = (
  p: number,
  g: number,
  m: number,
  v: number,
  bytes: number,
  beta1: number,
  c1: number,
  beta2: number,
  c2: number,
  stepSize: number,
  epsHat: number,
  decay: number,
) => void

export type SumOfSquaresKernel = (x: number, bytes: number) => number

/** Instantiates the kernels over a memory of at least one 64 KiB page. */
export function adamWKernels(memory: WebAssembly.Memory): { adamw: AdamWKernel; sumsq: SumOfSquaresKernel } {
  compiled ??= new WebAssembly.Module(moduleBytes())
  const instance = new WebAssembly.Instance(compiled, { env: { memory } })
  return { adamw: instance.exports.adamw as AdamWKernel, sumsq: instance.exports.sumsq as SumOfSquaresKernel }
}
