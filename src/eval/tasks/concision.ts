/** Concise and correct: the product, in at most five words. */
import { defineFamily, integers, numbers, words } from '../task-family.ts'

const MAX_WORDS = 5
const EVAL_TEMPLATES = ['What is {} times {}?', 'Give the product of {} and {}.']

const FILLER = [
  'Well, let me think about this for a moment.',
  'Multiplication is repeated addition, as everyone knows.',
  'This is a classic question and there is a lot to say.',
  'I will go through it slowly so nothing is missed.',
]

export const concision = defineFamily({
  name: 'concision',
  principle: {
    feature: 'brevity',
    good: 'Answer with the result only, in a few words.',
    bad: 'Answer at great length with filler around the result.',
  },
  pools: {
    train: { templates: ['Multiply {} by {}.'], vocab: numbers(2, 9) },
    validation: { templates: EVAL_TEMPLATES, vocab: numbers(31, 39) },
    test: { templates: EVAL_TEMPLATES, vocab: numbers(41, 49) },
  },
  check([a, b], response) {
    const correct = integers(response).includes(Number(a) * Number(b))
    return correct && words(response).length <= MAX_WORDS ? 1 : 0
  },
  demonstrate([a, b], good, rng) {
    const product = Number(a) * Number(b)
    if (good) return `${product}.`
    return `${rng.pick(FILLER)} ${rng.pick(FILLER)} The answer is ${product}.`
  },
})
