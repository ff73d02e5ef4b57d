import { GraphError } from '../errors.ts'
import type { Graph } from './graph.ts'
import type { Tensor } from './tensor.ts'

/** What a VJP rule sees of the forward application. */
export interface VjpContext<I extends readonly (Tensor | undefined)[] = readonly (Tensor | undefined)[]> {
  readonly inputs: I
  readonly outputs: readonly Tensor[]
  /** needs[i]: some wrt depends on input i, so its cotangent will be used. */
  readonly needs: readonly boolean[]
}

/** A cotangent, null (no gradient), or a thunk evaluated only when that input needs one. */
export type Cotangent = Tensor | null | (() => Tensor | null)
export type Cotangents = readonly Cotangent[]

/**
 * Receives one cotangent per output (grad() fills outputs without one with zeros, so single-output
 * rules never see a missing cotangent) and returns one per input.
 */
export type VjpRule<I extends readonly (Tensor | undefined)[], A> = (
  g: Graph,
  ctx: VjpContext<I>,
  cotangents: readonly Tensor[],
  attrs: A,
) => readonly Cotangent[]

export interface OpSpec<I extends readonly (Tensor | undefined)[], A> {
  /** Registry key, usually the ONNX op type it emits. */
  type: string
  /** Checks shapes and dtypes (throwing ShapeError/GraphError), then emits nodes. */
  forward: (g: Graph, inputs: I, attrs: A) => Tensor[]
  /** The VJP rule, or null for ops without a gradient (indices, masks, shapes). */
  vjp: VjpRule<I, A> | null
}

/** The type-erased definition the tape stores. */
export interface OpDef {
  readonly type: string
  readonly forward: (g: Graph, inputs: readonly (Tensor | undefined)[], attrs: unknown) => Tensor[]
  readonly vjp: VjpRule<readonly (Tensor | undefined)[], unknown> | null
}

type Args<I extends readonly unknown[], A> = Record<string, never> extends A ? [...I] | [...I, A] : [...I, A]

/** The public function of an op: op(g, ...inputs, attrs?). */
export interface Op<I extends readonly (Tensor | undefined)[], A, D extends boolean> {
  (g: Graph, ...args: Args<I, A>): Tensor
  /** All outputs (for multi-output ops such as Split). */
  applyAll(g: Graph, inputs: I, attrs: A): Tensor[]
  readonly def: OpDef
  readonly differentiable: D
}

function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && 'name' in x && 'dtype' in x && 'shape' in x
}

/** Applies a definition: runs its forward and records the application on the tape. */
function apply(def: OpDef, g: Graph, inputs: readonly (Tensor | undefined)[], attrs: unknown): Tensor[] {
  for (const t of inputs) if (t !== undefined) g.assertOwned(t, g.nodeLabel(def.type))
  const mark = g.nodeCount
  const outputs = def.forward(g, inputs, attrs)
  // A forward may pass an input through unchanged (e.g. a no-op reshape): nothing to record then.
  const fresh = outputs.every((t) => (g.producerIndex(t) ?? -1) >= mark)
  if (fresh) g.record({ op: def, inputs, outputs, attrs, scope: g.scopeName })
  return outputs
}

/**
 * Defines an op once: forward emission and VJP rule side by side. The result is the op's public
 * function; rules build only through such functions, so backward graphs are recorded too.
 */
export function defineOp<I extends readonly (Tensor | undefined)[], A = Record<string, never>>(
  spec: OpSpec<I, A> & { vjp: VjpRule<I, A> },
): Op<I, A, true>
export function defineOp<I extends readonly (Tensor | undefined)[], A = Record<string, never>>(
  spec: OpSpec<I, A> & { vjp: null },
): Op<I, A, false>
export function defineOp<I extends readonly (Tensor | undefined)[], A>(
  spec: OpSpec<I, A>,
): Op<I, A, boolean> {
  const def = spec as unknown as OpDef
  const applyAll = (g: Graph, inputs: I, attrs: A) => apply(def, g, inputs, attrs ?? {})
  const fn = (g: Graph, ...args: unknown[]): Tensor => {
    const last = args[args.length - 1]
    const hasAttrs = args.length > 0 && last !== undefined && !isTensor(last) && !Array.isArray(last)
    const inputs = (hasAttrs ? args.slice(0, -1) : args) as unknown as I
    const outs = apply(def, g, inputs, hasAttrs ? last : {})
    if (outs.length !== 1) throw new GraphError(`${spec.type} has ${outs.length} outputs: use applyAll`)
    return outs[0]
  }
  return Object.assign(fn, { applyAll, def, differentiable: spec.vjp !== null }) as unknown as Op<
    I,
    A,
    boolean
  >
}
