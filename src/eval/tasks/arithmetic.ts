/** Arithmetic correctness: the final number of the answer must be the sum. */
import type { TaskFamily } from '../task-family.ts'
import { integers } from '../task-family.ts'

const PROMPT = /^What is (\d+) \+ (\d+)\?$/

function operands(prompt: string): [number, number] | undefined {
  const m = PROMPT.exec(prompt.trim())
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

export const arithmetic: TaskFamily = {
  name: 'arithmetic',
  principle: {
    feature: 'arithmetic',
    good: 'Compute the result correctly.',
    bad: 'Give a wrong result.',
  },
  makePrompt: (rng) => `What is ${rng.int(10)} + ${rng.int(10)}?`,
  owns: (prompt) => operands(prompt) !== undefined,
  check(prompt, response) {
    const ab = operands(prompt)
    const found = integers(response)
    return ab && found.length > 0 && found.at(-1) === ab[0] + ab[1] ? 1 : 0
  },
  demonstrate(prompt, good, rng) {
    const [a, b] = operands(prompt) ?? [0, 0]
    const wrong = a + b + 1 + rng.int(5)
    return `${a} + ${b} = ${good ? a + b : wrong}.`
  },
}
