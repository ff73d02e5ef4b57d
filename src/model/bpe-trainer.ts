/**
 * Learns a small byte-level BPE (GPT-2 style: bytes mapped to printable characters, the GPT-2
 * pre-tokenizer regex, merges of the most frequent adjacent pair) and writes it as a Hugging Face
 * `tokenizer.json`. Deterministic: ties are broken by the pair's text.
 */

/** GPT-2's byte -> printable character table (`bytes_to_unicode`). */
export function bytesToUnicode(): string[] {
  const printable: number[] = []
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b)
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b)
  for (let b = 0xae; b <= 0xff; b++) printable.push(b)
  const table: string[] = new Array(256)
  let n = 0
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + n++)
  }
  return table
}

/** The pattern of the ByteLevel pre-tokenizer with use_regex (GPT-2). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu

export interface BpeModel {
  /** Token string -> id: the 256 byte symbols first (by byte value), then one per merge. */
  vocab: Map<string, number>
  merges: [string, string][]
}

/** Learns at most `numMerges` merges from `corpus` (stops early when no pair occurs twice). */
export function trainByteLevelBpe(corpus: string, numMerges: number): BpeModel {
  const byteChar = bytesToUnicode()
  const encoder = new TextEncoder()
  const wordCounts = new Map<string, number>()
  for (const piece of corpus.match(GPT2_SPLIT) ?? []) {
    const mapped = Array.from(encoder.encode(piece), (b) => byteChar[b]).join('')
    wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1)
  }
  const words = [...wordCounts].map(([w, count]) => ({ symbols: Array.from(w), count }))
  const vocab = new Map<string, number>(byteChar.map((c, i) => [c, i]))
  const merges: [string, string][] = []
  while (merges.length < numMerges) {
    const pairCounts = new Map<string, number>()
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count)
      }
    }
    let best: string | null = null
    let bestCount = 1
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== null && key < best)) {
        best = key
        bestCount = count
      }
    }
    if (best === null) break
    const [a, b] = best.split(' ') as [string, string]
    merges.push([a, b])
    vocab.set(a + b, vocab.size)
    for (const w of words) {
      const out: string[] = []
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
          out.push(a + b)
          i++
        } else {
          out.push(w.symbols[i])
        }
      }
      w.symbols = out
    }
  }
  return { vocab, merges }
}

/** A tokenizer.json for a byte-level BPE model plus special tokens appended after the vocabulary. */
export function byteLevelTokenizerJson(
  model: BpeModel,
  specialTokens: readonly string[],
): Record<string, unknown> {
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content, i) => ({
      id: model.vocab.size + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(model.vocab),
      merges: model.merges,
    },
  }
}
