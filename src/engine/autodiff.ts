import { GradError } from '../errors.ts'
import type { CheckpointSegment, Graph, TapeEntry } from './graph.ts'
import { add, expandLike, mul, reduceSum, scatterNDAdd, slice, squeeze, zerosLike } from './ops/index.ts'
import { formatShape, isFloat, type Tensor } from './tensor.ts'

/** The indices and updates of `t` when it is a scatter-add into zeros (a Gather's gradient). */
function scatterIntoZeros(g: Graph, t: Tensor): { indices: Tensor; updates: Tensor } | undefined {
  const e = g.producer(t)
  if (e?.op.type !== 'ScatterND') return undefined
  const zeros = g.producer(e.inputs[0]!)
  const isZeros = zeros?.op.type === 'Expand' && zeros.inputs[0] === g.constant(0, t.dtype)
  return isZeros ? { indices: e.inputs[1]!, updates: e.inputs[2]! } : undefined
}

/**
 * Sums two cotangents of one value. A Gather's gradient (rows scatter-added into zeros) is
 * scatter-added into the other one instead: a tied embedding's gradient then needs one (V, H)
 * buffer, not the zeros, the scatter and the sum.
 */
function accumulate(g: Graph, a: Tensor, b: Tensor): Tensor {
  const sb = scatterIntoZeros(g, b)
  if (sb) return scatterNDAdd(g, a, sb.indices, sb.updates)
  const sa = scatterIntoZeros(g, a)
  if (sa) return scatterNDAdd(g, b, sa.indices, sa.updates)
  return add(g, a, b)
}

/**
 * Sums a cotangent over the axes its input was broadcast along, so it takes the input's shape:
 * leading extra axes and axes where the input has size 1.
 */
function unbroadcast(g: Graph, ct: Tensor, input: Tensor): Tensor {
  const lead = ct.shape.length - input.shape.length
  if (lead < 0) return expandLike(g, ct, input)
  const axes = [...Array(lead).keys()]
  input.shape.forEach((d, i) => {
    if (d === 1 && ct.shape[i + lead] !== 1) axes.push(i + lead)
  })
  if (axes.length === 0) return ct
  const summed = reduceSum(g, ct, { axes, keepdims: true })
  return lead === 0 ? summed : squeeze(g, summed, { axes: [...Array(lead).keys()] })
}

/** A segment's forward and backward views: each value it produced -> its recomputed copy. */
type Recomputed = Map<string, Tensor>

/**
 * Emits the segment's forward ops a second time, fed from its inputs. Each input first gets
 * `+ 0 · (dy[0, …, 0] + …)` over `after`: an upstream cotangent, and the weight gradients of the
 * segment processed before. The copy then cannot run before the backward reaches the segment (so
 * the forward's intermediates are freed in between), onnxruntime's common-subexpression elimination
 * cannot merge it back into the forward (its inputs differ), and onnxruntime's execution order
 * (post-order from the outputs) cannot put the previous segment's weight gradients off to the
 * end, which would keep every recomputed segment alive at once.
 */
function recompute(
  g: Graph,
  tape: readonly TapeEntry[],
  seg: CheckpointSegment,
  after: readonly Tensor[],
): Recomputed {
  const copies: Recomputed = new Map()
  const dy = after[0]
  g.withScopePath('recompute', () => {
    const firsts = after.map((t) => {
      const rank = t.shape.length
      return reduceSum(
        g,
        slice(g, t, {
          starts: new Array(rank).fill(0),
          ends: new Array(rank).fill(1),
          axes: [...Array(rank).keys()],
        }),
      )
    })
    const zero = mul(
      g,
      firsts.reduce((a, b) => add(g, a, b)),
      g.constant(0, dy.dtype),
    )
    for (const x of seg.inputs) {
      copies.set(x.name, x.dtype === dy.dtype ? add(g, x, zero) : x)
    }
  })
  for (let i = seg.start; i < seg.end; i++) {
    const e = tape[i]
    const inputs = e.inputs.map((t) => t && (copies.get(t.name) ?? t))
    const outs = g.withScopePath(`recompute/${e.scope}`, () => e.op.forward(g, inputs, e.attrs))
    e.outputs.forEach((o, k) => {
      copies.set(o.name, outs[k])
    })
  }
  return copies
}

function describe(entry: TapeEntry): string {
  return `${entry.scope ? `${entry.scope}/` : ''}${entry.op.type}`
}

/**
 * Reverse-mode autodiff: appends the backward pass of `loss` to g and returns d loss / d w for each
 * w in wrt (null where w does not affect the loss). `seed` is the cotangent of loss (default ones),
 * so grad() also computes vector-Jacobian products. Only ops between wrt and loss are visited; the
 * walk sums fan-out, unbroadcasts, and skips integer values and stopGradient.
 */
export function grad(g: Graph, loss: Tensor, wrt: readonly Tensor[], seed?: Tensor): (Tensor | null)[] {
  g.assertOwned(loss, 'grad(loss)')
  for (const w of wrt) g.assertOwned(w, 'grad(wrt)')
  if (!isFloat(loss.dtype))
    throw new GradError(`grad: loss '${loss.name}' is ${loss.dtype}, expected a float type`)
  if (seed) {
    g.assertOwned(seed, 'grad(seed)')
    if (seed.dtype !== loss.dtype || seed.shape.length !== loss.shape.length) {
      throw new GradError(
        `grad: seed ${seed.dtype} ${formatShape(seed.shape)} does not match loss ${loss.dtype} ${formatShape(loss.shape)}`,
      )
    }
  }
  const tape = g.tape.slice()

  // Values that depend on some wrt through differentiable float ops.
  const depends = new Set(wrt.filter((w) => isFloat(w.dtype)).map((w) => w.name))
  for (const e of tape) {
    if (e.op.vjp === null || !e.inputs.some((t) => t && depends.has(t.name))) continue
    for (const o of e.outputs) if (isFloat(o.dtype)) depends.add(o.name)
  }
  if (!depends.has(loss.name)) return wrt.map(() => null)

  // Ops on a path from wrt to loss (tape indices), in reverse order.
  const needed = new Set([loss.name])
  const path: number[] = []
  for (let i = tape.length - 1; i >= 0; i--) {
    const e = tape[i]
    if (!e.outputs.some((o) => needed.has(o.name)) || e.op.vjp === null) continue
    const ins = e.inputs.filter((t): t is Tensor => t !== undefined && depends.has(t.name))
    if (ins.length === 0) continue
    path.push(i)
    for (const t of ins) needed.add(t.name)
  }

  const segmentAt = new Map<number, CheckpointSegment>()
  for (const seg of g.checkpoints) for (let i = seg.start; i < seg.end; i++) segmentAt.set(i, seg)
  const recomputed = new Map<CheckpointSegment, Recomputed>()
  const wrtNames = new Set(wrt.map((w) => w.name))
  let previous: CheckpointSegment | undefined
  /** Gradients (so far) of the wrt tensors the ops of `seg` read. */
  const weightGrads = (seg: CheckpointSegment, cts: ReadonlyMap<string, Tensor>): Tensor[] => {
    const names = new Set(
      tape.slice(seg.start, seg.end).flatMap((e) => e.inputs.filter((t) => t && wrtNames.has(t.name))),
    )
    return [...names].flatMap((t) => cts.get(t!.name) ?? []).filter((t) => t.dtype === loss.dtype)
  }

  return g.withScopePath('grad', () => {
    const cts = new Map<string, Tensor>()
    const one = g.constant(1, loss.dtype)
    cts.set(loss.name, seed ?? (loss.shape.length === 0 ? one : expandLike(g, one, loss)))
    for (const index of path) {
      const e = tape[index]
      const outs = e.outputs.map((o) => cts.get(o.name))
      if (outs.every((c) => c === undefined)) continue
      // Inside a checkpointed segment the rule reads the recomputed values, made on first need.
      const seg = segmentAt.get(index)
      let view = (t: Tensor) => t
      if (seg) {
        let copies = recomputed.get(seg)
        if (!copies) {
          const dy = outs.find((c) => c !== undefined)!
          copies = recompute(g, tape, seg, [dy, ...(previous ? weightGrads(previous, cts) : [])])
          recomputed.set(seg, copies)
          previous = seg
        }
        const own = copies
        view = (t) => own.get(t.name) ?? t
      }
      g.withScopePath(e.scope ? `grad/${e.scope}` : 'grad', () => {
        const dys = e.outputs.map((o, i) => outs[i] ?? zerosLike(g, view(o)))
        const needs = e.inputs.map((t) => t !== undefined && depends.has(t.name) && needed.has(t.name))
        const inputs = e.inputs.map((t) => t && view(t))
        const results = e.op.vjp!(g, { inputs, outputs: e.outputs.map(view), needs }, dys, e.attrs)
        if (results.length !== e.inputs.length) {
          throw new GradError(
            `${describe(e)}: VJP returned ${results.length} cotangents for ${e.inputs.length} inputs`,
          )
        }
        e.inputs.forEach((input, i) => {
          if (!input || !needs[i]) return
          const r = results[i]
          let ct = typeof r === 'function' ? r() : r
          if (ct === null) return
          if (ct.dtype !== input.dtype) {
            throw new GradError(
              `${describe(e)}: cotangent of input ${i} is ${ct.dtype}, expected ${input.dtype}`,
            )
          }
          ct = unbroadcast(g, ct, view(input))
          const prev = cts.get(input.name)
          cts.set(input.name, prev ? accumulate(g, prev, ct) : ct)
        })
      })
    }
    return wrt.map((w) => cts.get(w.name) ?? null)
  })
}
