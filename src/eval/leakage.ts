/**
 * Leakage between evaluation and training data. An evaluation prompt leaks when it, or a run of `n`
 * consecutive content words of it, occurs in any training text (queries, SFT prompts, system messages,
 * SFT responses); an answer leaks when a training text is that answer. Families leak by construction
 * when their evaluation templates or vocabulary reuse the training ones.
 */
import { SPLITS, type TaskFamily } from './task-family.ts'

const STOPWORDS = new Set(
  'a an the is are am was be i you me my your we it its this that to of for and or in on at with by do does how what which where who can could would should will from as so if'.split(
    ' ',
  ),
)

const normalise = (text: string) => text.toLowerCase().replace(/\s+/g, ' ').trim()

/** Lower-cased words without stop words and punctuation. */
export function contentWords(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9']+/)
    .filter((w) => w !== '' && !STOPWORDS.has(w))
}

/** Runs of `n` consecutive content words; a text with fewer yields its whole sequence. */
export function contentNgrams(text: string, n: number): string[] {
  const w = contentWords(text)
  if (w.length === 0) return []
  if (w.length <= n) return [w.join(' ')]
  return Array.from({ length: w.length - n + 1 }, (_, i) => w.slice(i, i + n).join(' '))
}

export interface EvalText {
  prompt: string
  /** Reference answers written for the prompt (e.g. its good and bad demonstrations). */
  answers?: string[]
}

export interface Leak {
  prompt: string
  kind: 'prompt_in_training' | 'shared_ngram' | 'answer_in_training'
  detail: string
}

/** Every way the evaluation texts leak into the training texts, with `n`-grams of content words. */
export function findLeaks(evaluation: readonly EvalText[], training: readonly string[], n = 3): Leak[] {
  const texts = training.map(normalise)
  const exact = new Set(texts)
  const grams = new Set<string>()
  for (const t of training) for (let k = 1; k <= n; k++) for (const g of contentNgrams(t, k)) grams.add(g)
  const leaks: Leak[] = []
  for (const { prompt, answers = [] } of evaluation) {
    const p = normalise(prompt)
    const host = texts.find((t) => t.includes(p))
    if (host !== undefined) leaks.push({ prompt, kind: 'prompt_in_training', detail: host })
    for (const g of contentNgrams(prompt, n))
      if (grams.has(g)) leaks.push({ prompt, kind: 'shared_ngram', detail: g })
    for (const a of answers)
      if (exact.has(normalise(a))) leaks.push({ prompt, kind: 'answer_in_training', detail: a })
  }
  return leaks
}

/** Templates and vocabulary entries that two splits of a family share (all pairs of splits). */
export function sharedPoolEntries(family: TaskFamily): string[] {
  const shared: string[] = []
  for (const [i, a] of SPLITS.entries()) {
    for (const b of SPLITS.slice(i + 1)) {
      const pa = family.pools[a]
      const pb = family.pools[b]
      if (!pa || !pb) continue
      const templates = a === 'train' ? pa.templates.filter((t) => pb.templates.includes(t)) : []
      const vocab = pa.vocab.filter((v) => pb.vocab.includes(v))
      for (const x of [...templates, ...vocab]) shared.push(`${family.name} ${a}/${b}: '${x}'`)
    }
  }
  return shared
}
