/**
 * A minimal protobuf writer: enough wire format for ONNX's ModelProto. Fields are written in the
 * order the caller gives them, so the same message always gives the same bytes.
 */
const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_BYTES = 2
const WIRE_FIXED32 = 5

const utf8 = new TextEncoder()

export class ProtoWriter {
  private chunks: Uint8Array[] = []
  private buf = new Uint8Array(256)
  private pos = 0

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    this.flush()
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, this.buf.length * 2))
  }

  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.slice(0, this.pos))
    this.pos = 0
  }

  private varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v))
    this.ensure(10)
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80
      x >>= 7n
    }
    this.buf[this.pos++] = Number(x)
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire)
  }

  uint(field: number, v: number | bigint): this {
    this.tag(field, WIRE_VARINT)
    this.varint(v)
    return this
  }

  float32(field: number, v: number): this {
    this.tag(field, WIRE_FIXED32)
    this.ensure(4)
    new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).setFloat32(0, v, true)
    this.pos += 4
    return this
  }

  float64(field: number, v: number): this {
    this.tag(field, WIRE_FIXED64)
    this.ensure(8)
    new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).setFloat64(0, v, true)
    this.pos += 8
    return this
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_BYTES)
    this.varint(data.length)
    if (data.length > 4096) {
      this.flush()
      this.chunks.push(data)
    } else {
      this.ensure(data.length)
      this.buf.set(data, this.pos)
      this.pos += data.length
    }
    return this
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s))
  }

  message(field: number, write: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter()
    write(inner)
    return this.bytes(field, inner.finish())
  }

  finish(): Uint8Array {
    this.flush()
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0))
    let off = 0
    for (const c of this.chunks) {
      out.set(c, off)
      off += c.length
    }
    return out
  }
}
