import type { Graph, Tensor } from '../graph.ts'
import { concat, split, squeeze, unsqueeze } from '../ops/index.ts'
import type { TrainableParam } from './optimizer.ts'

/**
 * Same-shaped params (each layer's copy of a weight) updated as stacks: the optimizer's dozen
 * element-wise kernels run once per stack instead of once per param. On a GPU every kernel costs a
 * dispatch from the host (Qwen2.5-0.5B's update on an H200 under its sandboxed driver: 4,249 kernels
 * and 492 ms of host time per step one param at a time, 924 and 291 ms in stacks); the stacks are
 * transient copies of params, gradients and moments, while the state stays one tensor per param.
 * WebGPU guarantees 8 storage buffers per shader, so a stack of 7 splits back in one kernel.
 */
export const WEBGPU_STACK = 7

/** Stacks of at most `maxMembers` params (and their gradients) sharing shape and weight decay. */
export function stackParams(
  g: Graph,
  params: readonly TrainableParam[],
  grads: readonly Tensor[],
  maxMembers: number,
): { params: TrainableParam[]; grads: Tensor[] } {
  const groups = new Map<string, number[]>()
  params.forEach((p, i) => {
    const key = `${p.tensor.shape.join('x')}|${p.decay !== false}`
    const group = groups.get(key)
    if (group) group.push(i)
    else groups.set(key, [i])
  })
  const out = { params: [] as TrainableParam[], grads: [] as Tensor[] }
  for (const indices of groups.values()) {
    for (let at = 0; at < indices.length; at += maxMembers) {
      const chunk = indices.slice(at, at + maxMembers)
      const members = chunk.map((i) => params[i])
      if (chunk.length === 1) {
        out.params.push(members[0])
        out.grads.push(grads[chunk[0]])
        continue
      }
      const tensor = stack(
        g,
        members.map((p) => p.tensor),
      )
      out.params.push({ name: `stack.${members[0].name}`, tensor, decay: members[0].decay, members })
      out.grads.push(
        stack(
          g,
          chunk.map((i) => grads[i]),
        ),
      )
    }
  }
  return out
}

/** [k, ...shape] from k tensors of one shape. */
export function stack(g: Graph, tensors: readonly Tensor[]): Tensor {
  return concat(g, ...tensors.map((t) => unsqueeze(g, t, { axes: [0] })), { axis: 0 })
}

/** The k tensors of a [k, ...shape] stack. */
export function unstack(g: Graph, stacked: Tensor): Tensor[] {
  const k = stacked.shape[0] as number
  return split(g, stacked, { axis: 0, sizes: Array(k).fill(1) }).map((t) => squeeze(g, t, { axes: [0] }))
}
