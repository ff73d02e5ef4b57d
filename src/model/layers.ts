/**
 * The building blocks every module of the model uses: Linear (with its LoRA wrapper) and RMSNorm
 * bound to their HF module paths, so node names and weight keys agree.
 */
import { add, fusedMatMul, type Graph, rmsNorm as rmsNormOp, type Tensor } from '../engine/index.ts'
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
  const { g, w, lora } = ctx
  return g.withScopePath(path, () => {
    let y = fusedMatMul(g, x, w.get(`${path}.weight`), { transB: true })
    if (w.has(`${path}.bias`)) y = add(g, y, w.get(`${path}.bias`))
    if (lora?.source.has(loraAKey(path))) {
      const down = fusedMatMul(g, x, lora.source.get(loraAKey(path)), { transB: true })
      y = add(
        g,
        y,
        fusedMatMul(g, down, lora.source.get(loraBKey(path)), { transB: true, alpha: lora.scale }),
      )
    }
    return y
  })
}

/** RMSNorm module at `path` (weight `<path>.weight`, eps from the config). */
export function rmsNorm(ctx: ModelContext, x: Tensor, path: string): Tensor {
  return ctx.g.withScopePath(path, () =>
    rmsNormOp(ctx.g, x, ctx.w.get(`${path}.weight`), ctx.cfg.rms_norm_eps),
  )
}
