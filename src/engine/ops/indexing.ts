import type { Graph } from '../graph.ts'
import type { AttrValue } from '../onnx/model.ts'
import { type Cotangents, defineOp } from '../op.ts'
import { type Dim, formatShape, ONNX_DTYPE, type Tensor } from '../tensor.ts'
import { cast, transpose, unsqueeze, zerosLike } from './shape.ts'
import { attr, axisOf, requireDType, requireSameDType, sameDim, shapeError } from './util.ts'

const INDEX_TYPES = ['int64', 'int32'] as const

/** y = data.take(indices, axis) (embedding lookup for axis 0);  ddata = dy scatter-added at the indices. */
export const gather = defineOp<[data: Tensor, indices: Tensor], { axis?: number }>({
  type: 'Gather',
  forward: (g, [data, indices], { axis = 0 }) => {
    requireDType(g, 'Gather', indices, INDEX_TYPES)
    const a = axisOf(g, 'Gather', axis, data.shape.length)
    const out = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)]
    return g.emit('Gather', [data, indices], { axis: attr.int(a) }, [{ dtype: data.dtype, shape: out }])
  },
  vjp: (g, { inputs: [data, indices] }, [dy], { axis = 0 }): Cotangents => {
    const a = axisOf(g, 'Gather', axis, data.shape.length)
    const idx = unsqueeze(g, indices.dtype === 'int64' ? indices : cast(g, indices, { to: 'int64' }), {
      axes: [-1],
    })
    if (a === 0) return [scatterNDAdd(g, zerosLike(g, data), idx, dy), null]
    // Move the gathered axis to the front, scatter rows there, and move it back.
    const q = indices.shape.length
    const r = data.shape.length
    const pre = [...Array(a).keys()]
    const dyPerm = [...Array(q).keys()]
      .map((i) => a + i)
      .concat(
        pre,
        [...Array(r - a - 1).keys()].map((i) => a + q + i),
      )
    const dataPerm = [a, ...pre, ...[...Array(r - a - 1).keys()].map((i) => a + 1 + i)]
    const front = transpose(g, data, { perm: dataPerm })
    const summed = scatterNDAdd(g, zerosLike(g, front), idx, transpose(g, dy, { perm: dyPerm }))
    const back = dataPerm.map((_, i) => dataPerm.indexOf(i))
    return [transpose(g, summed, { perm: back }), null]
  },
})

/** y[i][j] = data[indices[i][j]][j] along axis;  ddata = dy scatter-added at the indices. */
export const gatherElements = defineOp<[data: Tensor, indices: Tensor], { axis: number }>({
  type: 'GatherElements',
  forward: (g, [data, indices], { axis }) => {
    requireDType(g, 'GatherElements', indices, INDEX_TYPES)
    const a = axisOf(g, 'GatherElements', axis, data.shape.length)
    if (indices.shape.length !== data.shape.length) {
      shapeError(
        g,
        'GatherElements',
        `indices ${formatShape(indices.shape)} and data ${formatShape(data.shape)} differ in rank`,
      )
    }
    return g.emit('GatherElements', [data, indices], { axis: attr.int(a) }, [
      { dtype: data.dtype, shape: indices.shape },
    ])
  },
  vjp: (g, { inputs: [data, indices] }, [dy], { axis }): Cotangents => [
    scatterElementsAdd(g, zerosLike(g, data), indices, dy, { axis }),
    null,
  ],
})

/** y = data[indices] with the last index axis addressing the leading data axes;  ddata = scatter-add of dy. */
export const gatherND = defineOp<[data: Tensor, indices: Tensor]>({
  type: 'GatherND',
  forward: (g, [data, indices]) => {
    requireDType(g, 'GatherND', indices, ['int64'])
    const k = indices.shape[indices.shape.length - 1]
    if (typeof k !== 'number' || k > data.shape.length) {
      shapeError(
        g,
        'GatherND',
        `index depth ${k} of ${formatShape(indices.shape)} for data ${formatShape(data.shape)}`,
      )
    }
    const out: Dim[] = [...indices.shape.slice(0, -1), ...data.shape.slice(k)]
    return g.emit('GatherND', [data, indices], {}, [{ dtype: data.dtype, shape: out }])
  },
  vjp: (g, { inputs: [data, indices] }, [dy]): Cotangents => [
    scatterNDAdd(g, zerosLike(g, data), indices, dy),
    null,
  ],
})

/**
 * Emits a Scatter* node with reduction=add. onnxruntime's CPU kernels have no float16 add
 * reduction, so float16 data and updates go through float32 and back.
 */
function emitScatterAdd(
  g: Graph,
  type: 'ScatterND' | 'ScatterElements',
  [data, indices, updates]: readonly Tensor[],
  attrs: Readonly<Record<string, AttrValue>>,
): Tensor[] {
  const all = { ...attrs, reduction: { type: 'string', value: 'add' } } as const
  if (data.dtype !== 'float16')
    return g.emit(type, [data, indices, updates], all, [{ dtype: data.dtype, shape: data.shape }])
  const to32 = (t: Tensor) =>
    g.emit('Cast', [t], { to: attr.int(ONNX_DTYPE.float32) }, [{ dtype: 'float32', shape: t.shape }])[0]
  const [sum] = g.emit(type, [to32(data), indices, to32(updates)], all, [
    { dtype: 'float32', shape: data.shape },
  ])
  return g.emit('Cast', [sum], { to: attr.int(ONNX_DTYPE.float16) }, [
    { dtype: 'float16', shape: data.shape },
  ])
}

/** y = data with updates added at indices (ScatterND, reduction add);  ddata = dy, dupdates = dy[indices]. */
export const scatterNDAdd = defineOp<[data: Tensor, indices: Tensor, updates: Tensor]>({
  type: 'ScatterND',
  forward: (g, [data, indices, updates]) => {
    requireSameDType(g, 'ScatterND', [data, updates])
    requireDType(g, 'ScatterND', indices, ['int64'])
    return emitScatterAdd(g, 'ScatterND', [data, indices, updates], {})
  },
  vjp: (g, { inputs: [, indices] }, [dy]): Cotangents => [dy, null, () => gatherND(g, dy, indices)],
})

/** y = data with updates added at indices along axis;  ddata = dy, dupdates = gatherElements(dy). */
export const scatterElementsAdd = defineOp<
  [data: Tensor, indices: Tensor, updates: Tensor],
  { axis: number }
>({
  type: 'ScatterElements',
  forward: (g, [data, indices, updates], { axis }) => {
    requireSameDType(g, 'ScatterElements', [data, updates])
    requireDType(g, 'ScatterElements', indices, INDEX_TYPES)
    const a = axisOf(g, 'ScatterElements', axis, data.shape.length)
    if (
      !indices.shape.every((d, i) => sameDim(d, updates.shape[i])) ||
      indices.shape.length !== updates.shape.length
    ) {
      shapeError(
        g,
        'ScatterElements',
        `indices ${formatShape(indices.shape)} vs updates ${formatShape(updates.shape)}`,
      )
    }
    return emitScatterAdd(g, 'ScatterElements', [data, indices, updates], { axis: attr.int(a) })
  },
  vjp: (g, { inputs: [, indices] }, [dy], { axis }): Cotangents => [
    dy,
    null,
    () => gatherElements(g, dy, indices, { axis }),
  ],
})
