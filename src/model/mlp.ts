/** The gated MLP of a decoder layer (HF `LlamaMLP`): down_proj(silu(gate_proj(x)) · up_proj(x)). */
import { mul, silu, type Tensor } from '../engine/index.ts'
import { linear, type ModelContext } from './layers.ts'

export function mlp(ctx: ModelContext, x: Tensor, path: string): Tensor {
  const gate = linear(ctx, x, `${path}.gate_proj`)
  const up = linear(ctx, x, `${path}.up_proj`)
  const hidden = ctx.g.withScopePath(path, () => mul(ctx.g, silu(ctx.g, gate), up))
  return linear(ctx, hidden, `${path}.down_proj`)
}
