/**
 * Reads the nodes (name, op type, inputs, outputs) of an ONNX model: enough protobuf to inspect
 * the graph onnxruntime actually runs after its optimizations (optimizedModelFilePath).
 */
export interface OnnxNode {
  name: string
  opType: string
  inputs: string[]
  outputs: string[]
}

/** (field number, wire type, payload) of each field of one message; only what ONNX graphs use. */
function* fields(buf: Uint8Array): Generator<{ field: number; bytes?: Uint8Array }> {
  let pos = 0
  const varint = (): number => {
    let result = 0
    let shift = 1
    for (;;) {
      const b = buf[pos++]
      result += (b & 0x7f) * shift
      if (b < 0x80) return result
      shift *= 128
    }
  }
  while (pos < buf.length) {
    const key = varint()
    const wire = key & 7
    const field = Math.floor(key / 8)
    if (wire === 0) varint()
    else if (wire === 1) pos += 8
    else if (wire === 5) pos += 4
    else if (wire === 2) {
      const len = varint()
      yield { field, bytes: buf.subarray(pos, pos + len) }
      pos += len
    } else throw new Error(`unsupported protobuf wire type ${wire}`)
  }
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8')

/** ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto input 1, output 2, name 3, op_type 4. */
export function readOnnxNodes(model: Uint8Array): OnnxNode[] {
  const nodes: OnnxNode[] = []
  for (const m of fields(model)) {
    if (m.field !== 7 || !m.bytes) continue
    for (const gf of fields(m.bytes)) {
      if (gf.field !== 1 || !gf.bytes) continue
      const node: OnnxNode = { name: '', opType: '', inputs: [], outputs: [] }
      for (const f of fields(gf.bytes)) {
        if (!f.bytes) continue
        if (f.field === 1) node.inputs.push(text(f.bytes))
        else if (f.field === 2) node.outputs.push(text(f.bytes))
        else if (f.field === 3) node.name = text(f.bytes)
        else if (f.field === 4) node.opType = text(f.bytes)
      }
      nodes.push(node)
    }
  }
  return nodes
}
