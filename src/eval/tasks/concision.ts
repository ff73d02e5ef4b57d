/** Concise and correct: the product, in at most five words. */
import type { TaskFamily } from '../task-family.ts'
import { integers, words } from '../task-family.ts'

const PROMPT = /^Multiply (\d+) by (\d+)\.$/
const MAX_WORDS = 5

function operands(prompt: string): [number, number] | undefined {
  const m = PROMPT.exec(prompt.trim())
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

const FILLER = [
  'Well, let me think about this for a moment.',
  'Multiplication is repeated addition, as everyone knows.',
  'This is a classic question and there is a lot to say.',
  'I will go through it slowly so nothing is missed.',
]

export const concision: TaskFamily = {
  name: 'concision',
  principle: {
    feature: 'brevity',
    good: 'Answer with the result only, in a few words.',
    bad: 'Answer at great length with filler around the result.',
  },
  makePrompt: (rng) => `Multiply ${2 + rng.int(8)} by ${2 + rng.int(8)}.`,
  owns: (prompt) => operands(prompt) !== undefined,
  check(prompt, response) {
    const ab = operands(prompt)
    const correct = ab !== undefined && integers(response).includes(ab[0] * ab[1])
    return correct && words(response).length <= MAX_WORDS ? 1 : 0
  },
  demonstrate(prompt, good, rng) {
    const [a, b] = operands(prompt) ?? [0, 0]
    if (good) return `${a * b}.`
    return `${rng.pick(FILLER)} ${rng.pick(FILLER)} The answer is ${a * b}.`
  },
}
