/**
 * Gradients carried as float16 with one float32 scale per tensor, from the gradient graph to the
 * host optimizer: half the bytes of float32 in onnxruntime's output buffer and in the optimizer's
 * memory, which hold every gradient at once at the end of a backward pass. Each tensor is scaled
 * so that its largest magnitude is HALF_GRADIENT_PEAK: no overflow, 11 significant bits for
 * everything within 2^29 of that largest element, gradual underflow below (as loss scaling, but
 * per tensor and without skipped steps).
 */

import type { Graph, Tensor } from '../graph.ts'
import { toFloat16Bits } from '../onnx/float16.ts'
import { abs, cast, div, max, mul, reduceMax } from '../ops/index.ts'

/** The largest scaled magnitude: 2^15, half of float16's range (65504) left for rounding. */
export const HALF_GRADIENT_PEAK = 2 ** 15
/** Below this largest magnitude a gradient counts as zero (its scale stays finite in float32). */
const SMALLEST_PEAK = 1e-30

/** A float32 gradient as float16 bits of gradient × scale, and that scale (a float32 scalar). */
export function toHalfGradient(g: Graph, grad: Tensor): { bits: Tensor; scale: Tensor } {
  const peak = max(g, reduceMax(g, abs(g, grad)), g.constant(SMALLEST_PEAK, 'float32'))
  const scale = div(g, g.constant(HALF_GRADIENT_PEAK, 'float32'), peak)
  return { bits: cast(g, mul(g, grad, scale), { to: 'float16' }), scale }
}

let values: Float32Array | undefined

/** Every float16 bit pattern's value (65,536 entries), for host code that reads float16 gradients. */
export function halfValues(): Float32Array {
  if (!values) {
    values = new Float32Array(2 ** 16)
    const bits = new Uint32Array(values.buffer)
    // magnitude bits moved into float32's fields read 2^-112 too small (subnormals too): scale back
    for (let h = 0; h < bits.length; h++) bits[h] = (h & 0x7fff) << 13
    for (let h = 0; h < values.length; h++) values[h] *= 2 ** 112
    for (let h = 0x8000; h < values.length; h++) values[h] = -values[h]
  }
  return values
}

/** float16 bits of a value (round to nearest even). */
export const encodeHalf = toFloat16Bits
