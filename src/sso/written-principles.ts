/**
 * Query-specific principles (`principle_source: policy_written`): the policy itself writes, for each
 * query, one principle a good answer follows and a contrasting one a bad answer follows. Answers that
 * do not parse are asked again a bounded number of times; a query whose answers never parse is dropped.
 */
import { type Sampling, toSamplingOptions } from './hyperparameters.ts'
import type { ChatPrompt, TextGenerator } from './policy-port.ts'
import type { Rng } from './rng.ts'
import type { Principle } from './trainer-interface.ts'

/** Feature name under which a written principle is recorded. */
export const WRITTEN_FEATURE = 'written'
/** Token budget of one answer: two lines of guidelines. */
export const PRINCIPLE_MAX_NEW_TOKENS = 128
/** Longest guideline accepted, in characters: longer text is a ramble, not a principle. */
const MAX_GUIDELINE_CHARS = 400

const EXAMPLES: readonly { request: string; good: string; bad: string }[] = [
  {
    request: 'How do I reset my router?',
    good: 'Give the steps in the order they are done and say how to tell that the reset worked.',
    bad: 'Skip steps, mix up their order, and never say how to check the result.',
  },
  {
    request: 'Write a short poem about rain.',
    good: 'Use fresh images of rain and a steady rhythm, and keep it short.',
    bad: 'Use flat, worn-out phrases with no rhythm, and let it drag on.',
  },
]

/**
 * The few-shot prompt asking the policy for a good and a contrasting bad guideline for one query,
 * answered as two lines `Good: ...` and `Bad: ...`.
 */
export function writingPrompt(query: string): ChatPrompt {
  const system =
    'You write guidelines for answering a request. For the request given, write one guideline that the ' +
    'best answer to it follows, and one contrasting guideline that a poor answer follows. Reply with ' +
    'exactly two lines, "Good: <guideline>" and "Bad: <guideline>", and nothing else.'
  const shots = EXAMPLES.map((e) => `Request: ${e.request}\nGood: ${e.good}\nBad: ${e.bad}`)
  return { system, user: [...shots, `Request: ${query}`].join('\n\n') }
}

export type ParsedPrinciple = { ok: true; principle: Principle } | { ok: false; reason: string }

/** A `Good:` / `Bad:` line (optionally bulleted or bold), its label and its text. */
const LINE = /^\s*(?:[-*]\s*)?\**\s*(good|bad)\s*\**\s*:\s*\**\s*(.*)$/i

/**
 * Reads the policy's answer to `writingPrompt`: the first `Good:` and the first `Bad:` line. Malformed
 * when either is missing or empty, the two are the same, or one is over-long.
 */
export function parseWrittenPrinciple(answer: string): ParsedPrinciple {
  const found: { good?: string; bad?: string } = {}
  for (const line of answer.split('\n')) {
    const m = LINE.exec(line)
    if (!m) continue
    const label = m[1].toLowerCase() as 'good' | 'bad'
    found[label] ??= m[2].replace(/\*+$/, '').trim()
  }
  const { good, bad } = found
  if (!good) return { ok: false, reason: 'no Good: line' }
  if (!bad) return { ok: false, reason: 'no Bad: line' }
  if (good.toLowerCase() === bad.toLowerCase()) return { ok: false, reason: 'Good and Bad are the same' }
  if (good.length > MAX_GUIDELINE_CHARS || bad.length > MAX_GUIDELINE_CHARS)
    return { ok: false, reason: `a guideline longer than ${MAX_GUIDELINE_CHARS} characters` }
  return { ok: true, principle: { feature: WRITTEN_FEATURE, good, bad } }
}

export interface WritingOptions {
  /** Answers asked per query at most. */
  attempts: number
  /** Sampling of every attempt (a retry needs some randomness to answer differently). */
  sampling: Sampling
}

export interface WritingStats {
  /** Queries that got a principle. */
  written: number
  /** Answers that did not parse, retried ones included. */
  malformed: number
  /** Queries dropped because none of their answers parsed. */
  dropped: number
}

/** Writes one principle per query; `principles[i]` is undefined for a dropped query. */
export async function writePrinciples(
  policy: TextGenerator,
  queries: readonly string[],
  options: WritingOptions,
  batchSize: number,
  rng: Rng,
): Promise<{ principles: (Principle | undefined)[]; stats: WritingStats }> {
  const principles: (Principle | undefined)[] = queries.map(() => undefined)
  let pending = queries.map((_, i) => i)
  let malformed = 0
  for (let attempt = 0; attempt < options.attempts && pending.length > 0; attempt++) {
    const failed: number[] = []
    for (let start = 0; start < pending.length; start += batchSize) {
      const batch = pending.slice(start, start + batchSize)
      const answers = await policy.generate(
        batch.map((i) => writingPrompt(queries[i])),
        toSamplingOptions(options.sampling, PRINCIPLE_MAX_NEW_TOKENS, rng.seed()),
      )
      batch.forEach((i, j) => {
        const parsed = parseWrittenPrinciple(answers[j])
        if (parsed.ok) principles[i] = parsed.principle
        else {
          malformed++
          failed.push(i)
        }
      })
    }
    pending = failed
  }
  return {
    principles,
    stats: { written: queries.length - pending.length, malformed, dropped: pending.length },
  }
}
