import ort from 'onnxruntime-node'
import type { Graph } from '../../src/engine/index.ts'

export interface Feed {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array
  dims: readonly number[]
}

const TYPE_OF = (data: Feed['data']): ort.Tensor.Type => {
  if (data instanceof Float64Array) return 'float64'
  if (data instanceof Float32Array) return 'float32'
  if (data instanceof BigInt64Array) return 'int64'
  if (data instanceof Int32Array) return 'int32'
  if (data instanceof Uint16Array) return 'float16'
  return 'bool'
}

/** A CPU inference session over a built graph (the engine's runtime is tested on its own). */
export async function openGraph(
  g: Graph,
): Promise<(feeds: Record<string, Feed>) => Promise<Record<string, Feed>>> {
  const { model, externalData } = g.serialize()
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    externalData: externalData.map((e) => ({ path: e.path, data: e.data })),
    logSeverityLevel: 3,
  })
  return async (feeds) => {
    const inputs: Record<string, ort.Tensor> = {}
    for (const [name, f] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor(TYPE_OF(f.data), f.data as never, [...f.dims])
    }
    const out = await session.run(inputs)
    const result: Record<string, Feed> = {}
    for (const [name, t] of Object.entries(out))
      result[name] = { data: t.data as Feed['data'], dims: [...t.dims] }
    return result
  }
}

/** Builds, runs once and returns the outputs. */
export async function runGraph(g: Graph, feeds: Record<string, Feed>): Promise<Record<string, Feed>> {
  return (await openGraph(g))(feeds)
}
