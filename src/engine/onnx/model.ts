import { type DType, ONNX_DTYPE, type Shape } from '../tensor.ts'
import { ProtoWriter } from './protobuf.ts'

/** Attribute values tagged with their ONNX type (JS numbers cannot tell 1.0 from 1). */
export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }

export interface NodeProto {
  name: string
  opType: string
  domain: string
  inputs: readonly string[]
  outputs: readonly string[]
  attrs: Readonly<Record<string, AttrValue>>
}

export interface ValueInfo {
  name: string
  dtype: DType
  shape: Shape
}

export interface TensorProto {
  name: string
  dtype: DType
  dims: readonly number[]
  /** Inline bytes, or where they live in the external data. */
  data: Uint8Array | { location: string; offset: number; length: number }
}

export interface ModelProto {
  irVersion: number
  opsets: readonly { domain: string; version: number }[]
  producerName: string
  graph: {
    name: string
    nodes: readonly NodeProto[]
    initializers: readonly TensorProto[]
    inputs: readonly ValueInfo[]
    outputs: readonly ValueInfo[]
  }
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 } as const

function writeAttr(w: ProtoWriter, name: string, a: AttrValue): void {
  w.string(1, name)
  switch (a.type) {
    case 'float':
      w.float32(2, a.value)
      break
    case 'int':
      w.uint(3, BigInt(a.value))
      break
    case 'string':
      w.string(4, a.value)
      break
    case 'floats':
      for (const f of a.value) w.float32(7, f)
      break
    case 'ints':
      for (const i of a.value) w.uint(8, BigInt(i))
      break
  }
  w.uint(20, ATTR_TYPE[a.type])
}

function writeNode(w: ProtoWriter, n: NodeProto): void {
  for (const i of n.inputs) w.string(1, i)
  for (const o of n.outputs) w.string(2, o)
  w.string(3, n.name)
  w.string(4, n.opType)
  for (const key of Object.keys(n.attrs).sort()) w.message(5, (a) => writeAttr(a, key, n.attrs[key]))
  if (n.domain) w.string(7, n.domain)
}

function writeTensor(w: ProtoWriter, t: TensorProto): void {
  for (const d of t.dims) w.uint(1, d)
  w.uint(2, ONNX_DTYPE[t.dtype])
  w.string(8, t.name)
  if (t.data instanceof Uint8Array) {
    w.bytes(9, t.data)
    return
  }
  const ext = t.data
  const entries: [string, string][] = [
    ['location', ext.location],
    ['offset', String(ext.offset)],
    ['length', String(ext.length)],
  ]
  for (const [k, v] of entries) w.message(13, (e) => e.string(1, k).string(2, v))
  w.uint(14, 1) // data_location = EXTERNAL
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name)
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.uint(1, ONNX_DTYPE[v.dtype])
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.uint(1, d) : dim.string(2, d)))
        }
      })
    }),
  )
}

/** Encodes a ModelProto (field numbers from onnx.proto). */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter()
  w.uint(1, m.irVersion)
  w.string(2, m.producerName)
  w.message(7, (g) => {
    for (const n of m.graph.nodes) g.message(1, (x) => writeNode(x, n))
    g.string(2, m.graph.name)
    for (const t of m.graph.initializers) g.message(5, (x) => writeTensor(x, t))
    for (const v of m.graph.inputs) g.message(11, (x) => writeValueInfo(x, v))
    for (const v of m.graph.outputs) g.message(12, (x) => writeValueInfo(x, v))
  })
  for (const o of m.opsets) w.message(8, (x) => (o.domain ? x.string(1, o.domain) : x).uint(2, o.version))
  return w.finish()
}
