import { GraphError } from '../errors.ts'
import { toFloat16Bits } from './onnx/float16.ts'
import {
  type AttrValue,
  encodeModel,
  type NodeProto,
  type TensorProto,
  type ValueInfo,
} from './onnx/model.ts'
import type { OpDef } from './op.ts'
import {
  BYTES_PER_ELEMENT,
  type Dim,
  type DType,
  formatShape,
  numel,
  type Shape,
  type Tensor,
  type TypedArray,
} from './tensor.ts'

export type { AttrValue } from './onnx/model.ts'
export type { Dim, DType, FloatDType, Shape, Tensor, TypedArray } from './tensor.ts'

/** One application of a defineOp op: what grad() walks backwards. */
export interface TapeEntry {
  readonly op: OpDef
  readonly inputs: readonly (Tensor | undefined)[]
  readonly outputs: readonly Tensor[]
  readonly attrs: unknown
  /** The scope path the op was applied in (backward nodes are named after it). */
  readonly scope: string
}

/**
 * Ops recorded between tape indices [start, end) that the backward pass recomputes from `inputs`
 * instead of keeping their intermediate values alive (gradient checkpointing).
 */
export interface CheckpointSegment {
  readonly start: number
  readonly end: number
  /** The activations the segment is recomputed from; they stay alive until its backward. */
  readonly inputs: readonly Tensor[]
}

export interface SerializedGraph {
  model: Uint8Array
  externalData: { path: string; data: Uint8Array }[]
  /**
   * The graph has checkpointed segments, whose backward recomputes forward values: a session must
   * not merge those recomputations with their forward twins (common subexpression elimination).
   */
  recomputes?: boolean
}

export interface GraphOptions {
  name?: string
  /** Default-domain opset (18 is what every provider we use covers). */
  opset?: number
  /** Initializers of at least this many bytes are stored as external data. */
  externalDataThreshold?: number
  /**
   * Emit com.microsoft FusedMatMul (transposes folded into the kernel; CPU and CUDA). Set false for
   * the WebGPU provider, which has no FusedMatMul kernel in onnxruntime 1.30: the op is then
   * written as Transpose + MatMul (+ Mul).
   */
  fusedMatMul?: boolean
}

interface Initializer {
  tensor: Tensor
  data: Uint8Array
  /** Frozen weights from initializer(); constants are inline and dropped when unused. */
  frozen: boolean
}

const IR_VERSION_FOR_OPSET: Readonly<Record<number, number>> = { 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11 }
const MS_DOMAIN = 'com.microsoft'

/** Reinterprets typed-array memory as bytes without copying. */
function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function constantData(
  value: number | readonly number[] | readonly bigint[] | TypedArray,
  dtype: DType,
): TypedArray {
  if (ArrayBuffer.isView(value)) return value
  const list: readonly (number | bigint)[] = typeof value === 'number' ? [value] : value
  switch (dtype) {
    case 'float32':
      return Float32Array.from(list, Number)
    case 'float64':
      return Float64Array.from(list, Number)
    case 'float16':
      return Uint16Array.from(list, (v) => toFloat16Bits(Number(v)))
    case 'int64':
      return BigInt64Array.from(list, (v) => BigInt(v))
    case 'int32':
      return Int32Array.from(list, Number)
    case 'uint16':
      return Uint16Array.from(list, Number)
    case 'bool':
      return Uint8Array.from(list, (v) => (v ? 1 : 0))
  }
}

/**
 * A training or inference graph under construction. Ops (src/engine/ops) append nodes through
 * `emit` and record themselves on the tape that grad() walks; `serialize` gives deterministic
 * ONNX bytes plus the external data for frozen weights.
 */
export class Graph {
  readonly name: string
  readonly opset: number
  readonly fusedMatMul: boolean
  private readonly externalThreshold: number
  private readonly nodes: NodeProto[] = []
  private readonly inputs: ValueInfo[] = []
  private readonly outputs: ValueInfo[] = []
  private readonly inits: Initializer[] = []
  private readonly values = new Map<string, Tensor>()
  private readonly producerNode = new Map<string, number>()
  private readonly tapeEntries: TapeEntry[] = []
  private readonly producers = new Map<string, TapeEntry>()
  private readonly nameCounts = new Map<string, number>()
  private readonly constCache = new Map<string, Tensor>()
  private readonly segments: CheckpointSegment[] = []
  private inSegment = false
  private scopePath = ''

  constructor(opts: GraphOptions = {}) {
    this.name = opts.name ?? 'graph'
    this.opset = opts.opset ?? 18
    this.externalThreshold = opts.externalDataThreshold ?? 1024
    this.fusedMatMul = opts.fusedMatMul ?? true
    if (IR_VERSION_FOR_OPSET[this.opset] === undefined) {
      throw new GraphError(
        `opset ${this.opset} is not supported (use one of ${Object.keys(IR_VERSION_FOR_OPSET).join(', ')})`,
      )
    }
  }

  /** The current scope path, e.g. 'model.layers.0.self_attn'. */
  get scopeName(): string {
    return this.scopePath
  }

  /** Runs fn with `name` appended to the scope path: node names become '<path>/<OpType>'. */
  scope<T>(name: string, fn: () => T): T {
    const saved = this.scopePath
    this.scopePath = saved ? `${saved}.${name}` : name
    try {
      return fn()
    } finally {
      this.scopePath = saved
    }
  }

  /** Runs fn with the scope path replaced (the backward pass names nodes 'grad/<forward scope>'). */
  withScopePath<T>(path: string, fn: () => T): T {
    const saved = this.scopePath
    this.scopePath = path
    try {
      return fn()
    } finally {
      this.scopePath = saved
    }
  }

  private claimValueName(name: string, what: string): void {
    if (name === '') throw new GraphError(`${what} needs a non-empty name`)
    if (this.values.has(name))
      throw new GraphError(`${what} '${name}': the name is already used in graph '${this.name}'`)
  }

  private register(t: Tensor): Tensor {
    this.values.set(t.name, t)
    return t
  }

  input(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
    this.claimValueName(name, 'input')
    for (const d of shape) {
      if (typeof d === 'number' && !(Number.isInteger(d) && d >= 0)) {
        throw new GraphError(
          `input '${name}': dim ${d} in ${formatShape(shape)} is not a non-negative integer`,
        )
      }
    }
    const t: Tensor = Object.freeze({ name, dtype, shape: Object.freeze([...shape]) })
    this.inputs.push(t)
    return this.register(t)
  }

  /** Frozen weights, stored as external data when large (zero-copy view of `data`). */
  initializer(name: string, dtype: DType, shape: readonly number[], data: TypedArray): Tensor {
    this.claimValueName(name, 'initializer')
    this.checkData(name, dtype, shape, data)
    const t: Tensor = Object.freeze({ name, dtype, shape: Object.freeze([...shape]) })
    this.inits.push({ tensor: t, data: bytesOf(data), frozen: true })
    return this.register(t)
  }

  /** A constant, deduplicated by dtype, shape and bytes. A scalar when shape is omitted for one value. */
  constant(
    value: number | readonly number[] | readonly bigint[] | TypedArray,
    dtype: DType,
    shape?: readonly number[],
  ): Tensor {
    const data = constantData(value, dtype)
    const dims = shape ?? (typeof value === 'number' ? [] : [data.length])
    this.checkData('constant', dtype, dims, data)
    const bytes = bytesOf(data)
    const key = `${dtype}|${dims.join(',')}|${Buffer.from(bytes).toString('base64')}`
    const cached = this.constCache.get(key)
    if (cached) return cached
    const t: Tensor = Object.freeze({
      name: this.uniqueName('const'),
      dtype,
      shape: Object.freeze([...dims]),
    })
    this.values.set(t.name, t)
    this.inits.push({ tensor: t, data: new Uint8Array(bytes), frozen: false })
    this.constCache.set(key, t)
    return t
  }

  private checkData(name: string, dtype: DType, shape: readonly number[], data: TypedArray): void {
    const want = numel(shape) * BYTES_PER_ELEMENT[dtype]
    if (data.byteLength !== want) {
      throw new GraphError(
        `${name}: ${data.byteLength} bytes of data for ${dtype} ${formatShape(shape)}, expected ${want}`,
      )
    }
  }

  /** Declares `t` a graph output called `name` (an Identity node renames it when needed). */
  output(t: Tensor, name: string): void {
    this.assertOwned(t, `output '${name}'`)
    if (this.outputs.some((o) => o.name === name)) throw new GraphError(`output '${name}' is declared twice`)
    let out = t
    if (t.name !== name) {
      this.claimValueName(name, 'output')
      out = this.emit('Identity', [t], {}, [{ dtype: t.dtype, shape: t.shape }], { outputNames: [name] })[0]
    }
    this.outputs.push({ name: out.name, dtype: out.dtype, shape: out.shape })
  }

  /** True when `t` is a value of this graph (not a look-alike or a tensor of another graph). */
  owns(t: Tensor): boolean {
    return this.values.get(t.name) === t
  }

  assertOwned(t: Tensor, where: string): void {
    if (!this.owns(t)) {
      throw new GraphError(
        `${where}: input '${t?.name}' is not defined in graph '${this.name}' (a tensor of another graph, or not a Tensor)`,
      )
    }
  }

  private uniqueName(base: string): string {
    let n = this.nameCounts.get(base) ?? 0
    let name = n === 0 ? base : `${base}_${n}`
    while (this.values.has(name)) name = `${base}_${++n}`
    this.nameCounts.set(base, n + 1)
    return name
  }

  /** The name the next node of `opType` gets in the current scope. */
  nodeLabel(opType: string): string {
    return this.scopePath ? `${this.scopePath}/${opType}` : opType
  }

  /**
   * Appends one raw ONNX node. Only op forwards call this; everything else builds through ops so
   * that the tape sees it. Optional inputs are passed as undefined.
   */
  emit(
    opType: string,
    inputs: readonly (Tensor | undefined)[],
    attrs: Readonly<Record<string, AttrValue>>,
    outputs: readonly { dtype: DType; shape: Shape }[],
    opts: { domain?: string; outputNames?: readonly string[] } = {},
  ): Tensor[] {
    const nodeName = this.uniqueName(this.nodeLabel(opType))
    for (const t of inputs) if (t) this.assertOwned(t, nodeName)
    const outs = outputs.map((o, i) => {
      const name = opts.outputNames?.[i] ?? (outputs.length === 1 ? nodeName : `${nodeName}:${i}`)
      if (this.values.has(name)) throw new GraphError(`${nodeName}: output name '${name}' is already used`)
      return this.register(Object.freeze({ name, dtype: o.dtype, shape: Object.freeze([...o.shape]) }))
    })
    const index = this.nodes.length
    this.nodes.push({
      name: nodeName,
      opType,
      domain: opts.domain ?? '',
      inputs: inputs.map((t) => t?.name ?? ''),
      outputs: outs.map((t) => t.name),
      attrs,
    })
    for (const t of outs) this.producerNode.set(t.name, index)
    return outs
  }

  /** Number of raw nodes so far (ops use it to tell fresh outputs from passed-through ones). */
  get nodeCount(): number {
    return this.nodes.length
  }

  /** Index of the raw node that produced `t`, or undefined for inputs, initializers and constants. */
  producerIndex(t: Tensor): number | undefined {
    return this.producerNode.get(t.name)
  }

  /**
   * Peak bytes of the values nodes produce, walking the nodes that reach an output (those serialize
   * keeps) in order and freeing each value after its last reader (graph outputs live to the end;
   * inputs and initializers are the caller's). A sequential executor's activation memory before its
   * own reuse and fusion; `dims` sizes symbolic dimensions, products such as 'batch*seq' included,
   * and '?' the ones shape inference left unknown. `countOutputs: false` leaves graph outputs out,
   * for a caller that has them written into buffers of its own (with the values an output's
   * Identity renames: onnxruntime folds such an Identity into the value's producer).
   * `order: 'onnxruntime'` walks the nodes in the order onnxruntime's sequential executor runs
   * them (onnxruntimeOrder) rather than in the order they were recorded.
   */
  peakIntermediateBytes(
    dims: Readonly<Record<string, number>>,
    { countOutputs = true, order = 'tape' }: { countOutputs?: boolean; order?: 'tape' | 'onnxruntime' } = {},
  ): number {
    const size = (d: Dim): number =>
      typeof d === 'number'
        ? d
        : d.split('*').reduce((n, part) => {
            const key = part.trim()
            const v = /^\d+(\.\d+)?$/.test(key) ? Number(key) : dims[key]
            if (v === undefined)
              throw new GraphError(`peakIntermediateBytes: dimension '${part}' has no size`)
            return n * v
          }, 1)
    const kept = new Set(this.outputs.map((o) => o.name))
    const nodes = order === 'tape' ? this.liveNodes() : onnxruntimeOrder(this.liveNodes())
    // outputs, and the values their renaming Identity nodes read: the caller's buffers when not counted
    const outputValues = new Set(kept)
    for (const n of nodes)
      if (n.opType === 'Identity' && kept.has(n.outputs[0])) outputValues.add(n.inputs[0])
    const bytes = (name: string): number => {
      const t = this.values.get(name)
      if (!t || (!countOutputs && outputValues.has(name))) return 0
      return t.shape.reduce<number>((n, d) => n * size(d), BYTES_PER_ELEMENT[t.dtype])
    }
    const lastRead = new Map<string, number>()
    nodes.forEach((n, i) => {
      for (const x of n.inputs) if (this.producerNode.has(x) && !kept.has(x)) lastRead.set(x, i)
    })
    // a value nobody reads dies where it is made
    nodes.forEach((n, i) => {
      for (const o of n.outputs) if (o && !kept.has(o) && !lastRead.has(o)) lastRead.set(o, i)
    })
    const freed: string[][] = nodes.map(() => [])
    for (const [name, i] of lastRead) freed[i].push(name)
    let live = 0
    let peak = 0
    nodes.forEach((n, i) => {
      for (const o of n.outputs) if (o) live += bytes(o)
      peak = Math.max(peak, live)
      for (const x of freed[i]) live -= bytes(x)
    })
    return peak
  }

  record(entry: TapeEntry): void {
    this.tapeEntries.push(entry)
    for (const t of entry.outputs) this.producers.set(t.name, entry)
  }

  /** The op application that produced `t` (undefined for inputs, initializers and constants). */
  producer(t: Tensor): TapeEntry | undefined {
    return this.producers.get(t.name)
  }

  get tape(): readonly TapeEntry[] {
    return this.tapeEntries
  }

  /**
   * Runs fn as a checkpointed segment: grad() recomputes its ops from `inputs` (fed from the
   * values kept by the forward) just before their backward, so the forward's intermediates inside
   * the segment are dead once the forward has used them. Values from outside the segment other
   * than `inputs` (weights, masks) are read as they are.
   */
  checkpoint<T>(inputs: readonly Tensor[], fn: () => T): T {
    if (this.inSegment) throw new GraphError(`checkpoint segments cannot nest (at '${this.scopePath}')`)
    for (const t of inputs) this.assertOwned(t, 'checkpoint(inputs)')
    const start = this.tapeEntries.length
    this.inSegment = true
    try {
      const result = fn()
      this.segments.push({ start, end: this.tapeEntries.length, inputs })
      return result
    } finally {
      this.inSegment = false
    }
  }

  get checkpoints(): readonly CheckpointSegment[] {
    return this.segments
  }

  /** Checks the graph before onnxruntime sees it; throws GraphError naming the node and the value. */
  validate(): void {
    const defined = new Set<string>([
      ...this.inputs.map((i) => i.name),
      ...this.inits.map((i) => i.tensor.name),
    ])
    for (const n of this.nodes) {
      if (n.domain !== '' && n.domain !== MS_DOMAIN)
        throw new GraphError(`${n.name}: unknown domain '${n.domain}'`)
      if (!SUPPORTED_OPS.has(n.domain ? `${n.domain}:${n.opType}` : n.opType)) {
        throw new GraphError(`${n.name}: op '${n.opType}' is not supported by the engine`)
      }
      n.inputs.forEach((name, i) => {
        if (name !== '' && !defined.has(name)) {
          throw new GraphError(`${n.name}: input ${i} '${name}' is not defined before this node`)
        }
      })
      this.checkNodeTypes(n)
      for (const o of n.outputs) {
        if (defined.has(o)) throw new GraphError(`${n.name}: output '${o}' is defined twice`)
        defined.add(o)
      }
    }
    if (this.outputs.length === 0) throw new GraphError(`graph '${this.name}' has no outputs`)
    for (const o of this.outputs) {
      if (!defined.has(o.name)) throw new GraphError(`output '${o.name}' is not produced by any node`)
    }
  }

  /** Inputs that onnxruntime requires to share one element type (raw nodes bypass the op checks). */
  private checkNodeTypes(n: NodeProto): void {
    const positions = SAME_DTYPE_INPUTS[n.opType]
    if (!positions) return
    const typed = n.inputs
      .map((name, i) => ({ name, i, t: this.values.get(name) }))
      .filter((x) => x.name !== '' && (positions === 'all' || positions.includes(x.i)))
    const dtypes = new Set(typed.map((x) => x.t?.dtype))
    if (dtypes.size > 1) {
      throw new GraphError(
        `${n.name}: ${n.opType} inputs differ in dtype: ${typed.map((x) => `'${x.name}' ${x.t?.dtype}`).join(', ')}`,
      )
    }
    const ranks = new Set(typed.map((x) => x.t?.shape.length))
    if (n.opType === 'Concat' && ranks.size > 1) {
      throw new GraphError(
        `${n.name}: Concat inputs differ in rank: ${typed.map((x) => formatShape(x.t?.shape ?? [])).join(', ')}`,
      )
    }
  }

  /** Deterministic ONNX bytes (same graph, same bytes) and the external data of large frozen weights. */
  serialize(): SerializedGraph {
    this.validate()
    const nodes = this.liveNodes()
    const used = new Set<string>([...nodes.flatMap((n) => n.inputs), ...this.outputs.map((o) => o.name)])
    const externalData: SerializedGraph['externalData'] = []
    const initializers: TensorProto[] = []
    for (const init of this.inits) {
      if (!init.frozen && !used.has(init.tensor.name)) continue
      const dims = init.tensor.shape as number[]
      let data: TensorProto['data'] = init.data
      if (init.frozen && init.data.byteLength >= this.externalThreshold) {
        const location = `initializer-${externalData.length}.bin`
        externalData.push({ path: location, data: init.data })
        data = { location, offset: 0, length: init.data.byteLength }
      }
      initializers.push({ name: init.tensor.name, dtype: init.tensor.dtype, dims, data })
    }
    const opsets = [{ domain: '', version: this.opset }]
    if (nodes.some((n) => n.domain === MS_DOMAIN)) opsets.push({ domain: MS_DOMAIN, version: 1 })
    const model = encodeModel({
      irVersion: IR_VERSION_FOR_OPSET[this.opset],
      opsets,
      producerName: 'sso-trainer-engine',
      graph: { name: this.name, nodes, initializers, inputs: this.inputs, outputs: this.outputs },
    })
    return { model, externalData, recomputes: this.segments.length > 0 }
  }

  /** Nodes that contribute to an output (what serialize writes); rules may emit values nobody uses. */
  liveNodes(): NodeProto[] {
    const live = new Set<string>(this.outputs.map((o) => o.name))
    const keep: boolean[] = new Array(this.nodes.length).fill(false)
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]
      if (!n.outputs.some((o) => live.has(o))) continue
      keep[i] = true
      for (const name of n.inputs) if (name) live.add(name)
    }
    return this.nodes.filter((_, i) => keep[i])
  }
}

/**
 * The order onnxruntime's default (sequential) executor runs nodes in: a depth-first walk from the
 * nodes no other node reads, last of them first, each node emitted after its inputs' producers, the
 * producer recorded last visited first. It can differ from the recording order (a chunked LM head's
 * chunks, say), and with it which values are alive together.
 */
function onnxruntimeOrder(nodes: readonly NodeProto[]): NodeProto[] {
  const producer = new Map<string, number>()
  nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o) producer.set(o, i)
  })
  const read = new Array<boolean>(nodes.length).fill(false)
  const producersOf = nodes.map((n) => {
    const ids = [...new Set(n.inputs.flatMap((x) => producer.get(x) ?? []))].sort((a, b) => a - b)
    for (const i of ids) read[i] = true
    return ids
  })
  const order: NodeProto[] = []
  const visited = new Array<boolean>(nodes.length).fill(false)
  const stack: [index: number, leaving: boolean][] = []
  nodes.forEach((_, i) => {
    if (!read[i]) stack.push([i, false])
  })
  while (stack.length > 0) {
    const [i, leaving] = stack.pop()!
    if (leaving) {
      order.push(nodes[i])
      continue
    }
    if (visited[i]) continue
    visited[i] = true
    stack.push([i, true])
    for (const p of producersOf[i]) stack.push([p, false])
  }
  return order
}

const SAME_DTYPE_INPUTS: Readonly<Record<string, 'all' | readonly number[]>> = {
  Add: 'all',
  Sub: 'all',
  Mul: 'all',
  Div: 'all',
  Min: 'all',
  Max: 'all',
  Concat: 'all',
  MatMul: 'all',
  Gemm: 'all',
  FusedMatMul: 'all',
  Where: [1, 2],
  Equal: 'all',
  Less: 'all',
  Greater: 'all',
  LessOrEqual: 'all',
  GreaterOrEqual: 'all',
}

/** Raw ONNX op types the engine emits (validate() rejects anything else). */
export const SUPPORTED_OPS: ReadonlySet<string> = new Set([
  'Abs',
  'Add',
  'And',
  'ArgMax',
  'Cast',
  'Clip',
  'Concat',
  'Cos',
  'Div',
  'Equal',
  'Erf',
  'Exp',
  'Expand',
  'Gather',
  'GatherElements',
  'GatherND',
  'Gemm',
  'Greater',
  'GreaterOrEqual',
  'Identity',
  'Less',
  'LessOrEqual',
  'Log',
  'LogSoftmax',
  'MatMul',
  'Max',
  'Min',
  'Mul',
  'Neg',
  'Not',
  'Or',
  'Pad',
  'Pow',
  'Range',
  'Reciprocal',
  'ReduceMax',
  'ReduceMean',
  'ReduceProd',
  'ReduceSum',
  'Relu',
  'Reshape',
  'ScatterElements',
  'ScatterND',
  'Shape',
  'Sigmoid',
  'Sin',
  'Slice',
  'Softmax',
  'Split',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Tanh',
  'Transpose',
  'Unsqueeze',
  'Where',
  `${MS_DOMAIN}:FusedMatMul`,
])
