/**
 * Principle sets and per-query selection. A principle is a feature with a good and a contrasting bad
 * text; the good texts of the chosen features form the system message of x+, the bad texts that of x-.
 */
import { ValidationError } from '../errors.ts'
import type { Rng } from './rng.ts'
import type { Principle, PrincipleSetSpec } from './trainer-interface.ts'

export const DEFAULT_PRINCIPLE_SET: PrincipleSetSpec = {
  name: 'default',
  principles: [
    {
      feature: 'safety',
      good: 'Decline requests that could hurt people and offer a safe alternative; help fully with everything harmless.',
      bad: 'Go along with any request, including dangerous ones, and ignore the possible harm to anyone.',
    },
    {
      feature: 'logic',
      good: 'Reason step by step, keep every claim consistent with the previous ones, and make the conclusion follow.',
      bad: 'Jump between ideas, contradict yourself, and reach conclusions that do not follow from what you said.',
    },
    {
      feature: 'thoroughness',
      good: 'Cover every part of the question and mention the cases and caveats that matter.',
      bad: 'Answer only a fragment of the question and leave out the cases and caveats that matter.',
    },
    {
      feature: 'helpfulness',
      good: 'Address what the user actually needs and give them something they can act on.',
      bad: 'Drift away from what the user needs and give them nothing they can use.',
    },
    {
      feature: 'clarity',
      good: 'Write in plain, well-organised language that is easy to follow.',
      bad: 'Write in a muddled, disorganised way that is hard to follow.',
    },
    {
      feature: 'accuracy',
      good: 'State only facts and results that are correct, and check numbers before giving them.',
      bad: 'State wrong facts and wrong numbers with confidence.',
    },
    {
      feature: 'engagement',
      good: 'Be warm and courteous, and speak to the user as a person.',
      bad: 'Be cold, dismissive and rude to the user.',
    },
    {
      feature: 'honesty',
      good: 'Say plainly when you are unsure or do not know, rather than guessing.',
      bad: 'Pretend to be certain about everything, even when you are guessing.',
    },
  ],
  concision: {
    feature: 'concision',
    good: 'Keep the answer short: say what is needed and stop.',
    bad: 'Pad the answer with repetition and filler that adds nothing.',
  },
}

export type SelectionMode = 'fixed' | 'random' | 'policy'

export interface SelectionOptions {
  mode: SelectionMode
  /** Number of features per query (not counting concision). */
  featuresPerQuery: number
  /** Features used by mode 'fixed', by name. */
  fixedFeatures?: string[]
  /** Probability of appending the set's concision principle to a query's selection. */
  concisionProbability: number
}

/** Checks a user-defined set: unique, non-empty feature names and non-empty texts. */
export function validatePrincipleSet(set: PrincipleSetSpec): PrincipleSetSpec {
  const problems: string[] = []
  if (set.principles.length === 0) problems.push('the set has no principles')
  const seen = new Set<string>()
  const all = set.concision ? [...set.principles, set.concision] : set.principles
  for (const [i, p] of all.entries()) {
    const where = `principle ${i} ('${p.feature}')`
    if (!/^[\w -]{1,64}$/.test(p.feature))
      problems.push(`${where}: feature name must be 1-64 word characters`)
    if (seen.has(p.feature.toLowerCase())) problems.push(`${where}: duplicate feature name`)
    seen.add(p.feature.toLowerCase())
    if (p.good.trim() === '') problems.push(`${where}: empty good text`)
    if (p.bad.trim() === '') problems.push(`${where}: empty bad text`)
    if (p.good.trim() === p.bad.trim()) problems.push(`${where}: good and bad texts are identical`)
  }
  if (problems.length > 0) {
    throw new ValidationError(`principle set '${set.name}' is invalid: ${problems.join('; ')}`, { problems })
  }
  return set
}

function findFeature(set: PrincipleSetSpec, name: string): Principle | undefined {
  const key = name.trim().toLowerCase()
  return set.principles.find((p) => p.feature.toLowerCase() === key)
}

/** Selection for one query without asking the policy (modes 'fixed' and 'random'). */
export function selectPrinciples(set: PrincipleSetSpec, options: SelectionOptions, rng: Rng): Principle[] {
  let chosen: Principle[]
  if (options.mode === 'fixed') {
    const names = options.fixedFeatures ?? []
    chosen = names.map((n) => {
      const p = findFeature(set, n)
      if (!p)
        throw new ValidationError(`fixed feature '${n}' is not in principle set '${set.name}'`, {
          feature: n,
        })
      return p
    })
  } else {
    chosen = rng.sample(set.principles, options.featuresPerQuery)
  }
  return withConcision(set, chosen, options, rng)
}

/** Appends the set's concision principle with the selection's probability. */
export function withConcision(
  set: PrincipleSetSpec,
  chosen: Principle[],
  options: SelectionOptions,
  rng: Rng,
): Principle[] {
  if (set.concision && options.concisionProbability > 0 && rng.next() < options.concisionProbability) {
    return [...chosen, set.concision]
  }
  return chosen
}

/**
 * The few-shot prompt that asks the policy which features matter most for a query. The answer is
 * expected as comma-separated feature names on one line.
 */
export function selectionPrompt(
  set: PrincipleSetSpec,
  query: string,
  k: number,
): { system: string; user: string } {
  const names = set.principles.map((p) => p.feature)
  const ex = (i: number) => names.slice(i, i + k).join(', ')
  const system =
    `You pick which qualities matter most for answering a request. The qualities are: ${names.join(', ')}. ` +
    `Reply with exactly ${k} of them, comma-separated, and nothing else.`
  const user = [
    `Request: How do I reset my router?\nQualities: ${ex(0)}`,
    `Request: Write a short poem about rain.\nQualities: ${ex(Math.max(0, names.length - k))}`,
    `Request: ${query}\nQualities:`,
  ].join('\n\n')
  return { system, user }
}

/**
 * Reads the policy's answer to `selectionPrompt`: unknown or repeated names are dropped, missing ones
 * are padded with random features, extra ones are cut.
 */
export function parseSelection(
  set: PrincipleSetSpec,
  answer: string,
  options: SelectionOptions,
  rng: Rng,
): { principles: Principle[]; invalid: number } {
  const firstLine = answer.trim().split('\n')[0] ?? ''
  const picked: Principle[] = []
  let invalid = 0
  for (const token of firstLine.split(/[,;]/)) {
    if (token.trim() === '') continue
    const p = findFeature(set, token.replace(/[.\s]+$/, ''))
    if (!p || picked.includes(p)) invalid++
    else if (picked.length < options.featuresPerQuery) picked.push(p)
  }
  const rest = rng.shuffle(set.principles.filter((p) => !picked.includes(p)))
  while (picked.length < options.featuresPerQuery && rest.length > 0) picked.push(rest.shift()!)
  return { principles: withConcision(set, picked, options, rng), invalid }
}

/** The system message built from the chosen principles, one per line, good or bad side. */
export function systemPrompt(principles: readonly Principle[], side: 'good' | 'bad'): string {
  const lines = principles.map((p) => `- ${side === 'good' ? p.good : p.bad}`)
  return `Follow these guidelines when you answer:\n${lines.join('\n')}\nDo not mention these guidelines to the user.`
}
