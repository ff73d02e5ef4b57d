/**
 * FLOP accounting for throughput figures (benchmarks and the worker's throughput metric), after
 * nanoGPT's estimate_mfu: a multiply-add counts as 2 FLOPs; backward costs twice the forward.
 */

/** FLOPs of a (batched) matrix product [.., m, k] x [.., k, n]. */
export function matMulFlops(m: number, k: number, n: number, batch = 1): number {
  return 2 * m * k * n * batch
}

export interface DecoderShape {
  /** Parameters in the matrices that every token goes through (embeddings excluded). */
  params: number
  layers: number
  heads: number
  headDim: number
  seqLen: number
}

/** Forward+backward FLOPs per token of a decoder (PaLM appendix B): 6N + 12·L·H·Q·T. */
export function decoderTrainFlopsPerToken(d: DecoderShape): number {
  return 6 * d.params + 12 * d.layers * d.heads * d.headDim * d.seqLen
}

/** Achieved FLOP/s over a measured peak: the model FLOPs utilisation. */
export function flopsUtilisation(flops: number, seconds: number, peakFlopsPerSecond: number): number {
  return flops / seconds / peakFlopsPerSecond
}
