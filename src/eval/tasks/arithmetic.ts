/** Arithmetic correctness: the final number of the answer must be the sum. */
import { defineFamily, integers, numbers } from '../task-family.ts'

const EVAL_TEMPLATES = ['Add {} and {}.', 'Compute the sum of {} and {}.']

export const arithmetic = defineFamily({
  name: 'arithmetic',
  principle: {
    feature: 'arithmetic',
    good: 'Compute the result correctly.',
    bad: 'Give a wrong result.',
  },
  pools: {
    train: { templates: ['What is {} + {}?'], vocab: numbers(0, 9) },
    validation: { templates: EVAL_TEMPLATES, vocab: numbers(10, 19) },
    test: { templates: EVAL_TEMPLATES, vocab: numbers(20, 29) },
  },
  check([a, b], response) {
    return integers(response).at(-1) === Number(a) + Number(b) ? 1 : 0
  },
  demonstrate([a, b], good, rng) {
    const sum = Number(a) + Number(b)
    return `${a} + ${b} = ${good ? sum : sum + 1 + rng.int(5)}.`
  },
})
