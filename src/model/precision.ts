/**
 * Mixed precision of a policy's scoring and training graphs: the float32 master weights are cast
 * to float16 inside the graph where each is first used, the decoder's activations are float16, and
 * the RMSNorm statistics, the log-softmax over the vocabulary and the loss stay float32. The
 * backward pass of each Cast brings the gradients back to float32 for the float32 optimizer state.
 */
import { cast, float16Unsupported, type Graph, max, type Provider, type Tensor } from '../engine/index.ts'
import { ProviderUnavailableError, ValidationError } from '../errors.ts'
import type { DecoderInputs } from './llama.ts'
import type { WeightSource } from './weight-source.ts'

export type Precision = 'float32' | 'float16'

/**
 * The additive mask's "never" in float16. The float32 feeds say -1e9, which float16 makes -inf, and
 * a row with every key masked (padding) would then give NaN; this stays finite when added to any
 * score below 35,000 and still weighs exp(-30000) = 0 in the softmax.
 */
const HALF_MASK_VALUE = -30000

const toHalf = (g: Graph, t: Tensor): Tensor => cast(g, t, { to: 'float16' })

/** The float32 value of a tensor that may be float16 (where reductions need the range). */
export function toFloat32(g: Graph, t: Tensor): Tensor {
  return t.dtype === 'float16' ? cast(g, t, { to: 'float32' }) : t
}

/** Float16 copies of a source's weights, each cast where it is first used (in that scope). */
export function halfSource(g: Graph, source: WeightSource): WeightSource {
  const made = new Map<string, Tensor>()
  return {
    dtype: 'float16',
    has: (key) => source.has(key),
    // every use casts the whole weight to float16: there are no half bits to take parts of
    half: () => undefined,
    get(key) {
      let t = made.get(key)
      if (t === undefined) {
        t = toHalf(g, source.get(key))
        made.set(key, t)
      }
      return t
    },
  }
}

/** The decoder's float inputs (rotary tables, masks; fed as float32) in float16. */
export function halfDecoderInputs(g: Graph, inputs: DecoderInputs): DecoderInputs {
  return g.withScopePath('float16_inputs', () => ({
    ...inputs,
    cos: toHalf(g, inputs.cos),
    sin: toHalf(g, inputs.sin),
    masks: Object.fromEntries(
      Object.entries(inputs.masks).map(([kind, mask]) => [
        kind,
        toHalf(g, max(g, mask, g.constant(HALF_MASK_VALUE, mask.dtype))),
      ]),
    ),
  }))
}

/** float16 compute is for the WebGPU provider (its CPU kernels are few: most would be upcast). */
export function checkPrecision(precision: Precision | undefined, provider: Provider): void {
  if (precision === 'float16' && provider !== 'webgpu') {
    throw new ValidationError(
      `precision float16 runs on the webgpu provider only; this policy runs on ${provider} (use precision float32)`,
      { precision, provider },
    )
  }
}

/** Fails unless `provider` runs the float16 nodes of a mixed-precision graph on its device. */
export async function requireFloat16Compute(provider: Provider): Promise<void> {
  checkPrecision('float16', provider)
  const why = await float16Unsupported(provider)
  if (why !== undefined) {
    throw new ProviderUnavailableError(
      `precision float16 needs float16 kernels on the ${provider} device (the adapter's shader-f16 feature): ${why}; use precision float32`,
      { provider },
    )
  }
}
