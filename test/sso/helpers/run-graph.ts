/** Runs a built engine graph with onnxruntime-node directly (float64 feeds in, numbers out). */
import ort from 'onnxruntime-node'
import type { Graph } from '../../../src/engine/index.ts'

export interface Float64Feed {
  dims: number[]
  data: Float64Array
}

export async function graphRunner(g: Graph) {
  const { model, externalData } = g.serialize()
  const session = await ort.InferenceSession.create(model, {
    externalData: externalData.map((e) => ({ path: e.path, data: e.data })),
  })
  return {
    async run(feeds: Record<string, Float64Feed>): Promise<Record<string, Float64Array>> {
      const inputs = Object.fromEntries(
        Object.entries(feeds).map(([name, f]) => [name, new ort.Tensor('float64', f.data, f.dims)]),
      )
      const out = await session.run(inputs)
      return Object.fromEntries(
        Object.entries(out).map(([name, t]) => [name, Float64Array.from(t.data as Float64Array)]),
      )
    },
  }
}
