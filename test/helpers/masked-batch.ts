/**
 * A PackedBatch from Hugging Face-style (B, T) arrays (any padding per row): positions are
 * cumsum(mask) - 1, and slot t's target is token t + 1 when that token is a real response token.
 */
import type { PackedBatch } from '../../src/model/batch.ts'

export function batchFromMasks(
  rows: number,
  seq: number,
  ids: Int32Array,
  mask: ArrayLike<number>,
  response: ArrayLike<number>,
): PackedBatch {
  const positions = new Int32Array(rows * seq)
  const slots: number[] = []
  const targetIds: number[] = []
  const sequences: number[] = []
  for (let b = 0; b < rows; b++) {
    let p = 0
    for (let t = 0; t < seq; t++) {
      const i = b * seq + t
      positions[i] = mask[i] ? p++ : 0
      if (t + 1 < seq && mask[i + 1] && response[i + 1]) {
        slots.push(i)
        targetIds.push(ids[i + 1])
        sequences.push(b)
      }
    }
  }
  return {
    rows,
    seq,
    sequences: rows,
    ids,
    mask: Uint8Array.from(mask),
    positions,
    branches: new Int32Array(rows * seq),
    targets: {
      slots: Int32Array.from(slots),
      ids: Int32Array.from(targetIds),
      sequences: Int32Array.from(sequences),
    },
  }
}
