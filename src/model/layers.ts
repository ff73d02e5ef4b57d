/**
 * The building blocks every module of the model uses: Linear (with its LoRA wrapper) and RMSNorm
 * bound to their HF module paths, so node names and weight keys agree.
 */
import {
  add,
  concat,
  fusedMatMul,
  type Graph,
  rmsNorm as rmsNormOp,
  split,
  type Tensor,
} from '../engine/index.ts'
import type { LlamaConfig } from './config.ts'
import { loraAKey, loraBKey } from './lora.ts'
import type { WeightSource } from './weight-source.ts'

/** What every module needs: the graph, the config, the weights, and the adapters when LoRA is on. */
export interface ModelContext {
  g: Graph
  cfg: LlamaConfig
  w: WeightSource
  lora?: { source: WeightSource; scale: number }
  /** Recompute each decoder layer in the backward pass instead of keeping its activations. */
  checkpoint?: boolean
}

/**
 * Linear module at `path`: y = x Wᵀ (+ b), W stored [out, in] as HF does. With an adapter on this
 * module: y += scale · (x Aᵀ) Bᵀ (PEFT's LoRA forward, dropout off).
 */
export function linear(ctx: ModelContext, x: Tensor, path: string): Tensor {
  const { g, w } = ctx
  return g.withScopePath(path, () => {
    let y = fusedMatMul(g, x, w.get(`${path}.weight`), { transB: true })
    if (w.has(`${path}.bias`)) y = add(g, y, w.get(`${path}.bias`))
    return withAdapter(ctx, x, path, y)
  })
}

/**
 * Linear modules at `paths` that read the same x (attention's q, k and v) as one product over their
 * weights concatenated by output rows, then split: on WebGPU, which is bound by kernel dispatch, 12
 * kernels forward and backward instead of 20 for three. Each module's adapter is added to its part.
 * Biases are all present or all absent (else the modules run one by one, as they do in graphs with
 * FusedMatMul: the CPU's are bound by compute, and its Gemm takes each weight untransposed).
 */
export function linears(ctx: ModelContext, x: Tensor, paths: readonly string[], scope: string): Tensor[] {
  const { g, w } = ctx
  const biased = paths.map((p) => w.has(`${p}.bias`))
  if (g.fusedMatMul || biased.some((b) => b !== biased[0])) return paths.map((p) => linear(ctx, x, p))
  return g.withScopePath(scope, () => {
    const weights = paths.map((p) => w.get(`${p}.weight`))
    let y = fusedMatMul(g, x, concat(g, ...weights, { axis: 0 }), { transB: true })
    if (biased[0]) y = add(g, y, concat(g, ...paths.map((p) => w.get(`${p}.bias`)), { axis: 0 }))
    const sizes = weights.map((t) => t.shape[0] as number)
    return split(g, y, { axis: -1, sizes }).map((part, i) => withAdapter(ctx, x, paths[i], part))
  })
}

/** y plus the LoRA adapter's output at `path`, when it has one. */
function withAdapter(ctx: ModelContext, x: Tensor, path: string, y: Tensor): Tensor {
  const { g, lora } = ctx
  if (!lora?.source.has(loraAKey(path))) return y
  const down = fusedMatMul(g, x, lora.source.get(loraAKey(path)), { transB: true })
  return add(g, y, fusedMatMul(g, down, lora.source.get(loraBKey(path)), { transB: true, alpha: lora.scale }))
}

/** RMSNorm module at `path` (weight `<path>.weight`, eps from the config). */
export function rmsNorm(ctx: ModelContext, x: Tensor, path: string): Tensor {
  return ctx.g.withScopePath(path, () =>
    rmsNormOp(ctx.g, x, ctx.w.get(`${path}.weight`), ctx.cfg.rms_norm_eps),
  )
}
