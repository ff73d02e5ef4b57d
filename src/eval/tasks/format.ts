/** A required format: a list with one item per line, each starting with '- '. */
import { defineFamily } from '../task-family.ts'

const ITEMS: Record<string, string[]> = {
  // train
  fruits: ['apple', 'pear', 'plum', 'grape', 'lemon', 'cherry'],
  colors: ['red', 'blue', 'green', 'yellow', 'black', 'white'],
  animals: ['cat', 'dog', 'horse', 'mouse', 'bird', 'fish'],
  tools: ['hammer', 'saw', 'drill', 'wrench', 'spade', 'knife'],
  drinks: ['tea', 'coffee', 'milk', 'juice', 'water', 'cocoa'],
  shapes: ['circle', 'square', 'triangle', 'oval', 'star', 'cube'],
  clothes: ['shirt', 'coat', 'hat', 'glove', 'sock', 'boot'],
  sports: ['tennis', 'golf', 'rugby', 'hockey', 'boxing', 'rowing'],
  // validation
  vegetables: ['carrot', 'onion', 'leek', 'pea', 'bean', 'kale'],
  metals: ['iron', 'copper', 'zinc', 'tin', 'gold', 'silver'],
  // test
  instruments: ['piano', 'violin', 'flute', 'drum', 'harp', 'cello'],
  trees: ['oak', 'elm', 'ash', 'pine', 'birch', 'maple'],
}
const EVAL_TEMPLATES = ['List a few {}.', 'Which {} do you know?']

export const format = defineFamily({
  name: 'format',
  principle: {
    feature: 'format',
    good: "Answer as a list, one item per line, each line starting with '- '.",
    bad: 'Answer in a single sentence, never as a list.',
  },
  pools: {
    train: {
      templates: ['Name three {}.', 'Give me some {}.', 'What are some {}?'],
      vocab: ['fruits', 'colors', 'animals', 'tools', 'drinks', 'shapes', 'clothes', 'sports'],
    },
    validation: { templates: EVAL_TEMPLATES, vocab: ['vegetables', 'metals'] },
    test: { templates: EVAL_TEMPLATES, vocab: ['instruments', 'trees'] },
  },
  check(_slots, response) {
    const lines = response
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
    return lines.length >= 2 && lines.every((l) => /^- \S/.test(l.trim())) ? 1 : 0
  },
  demonstrate([category], good, rng) {
    const items = rng.sample(ITEMS[category], 3)
    // Both sides about as long, so that preferring one teaches the format, not a length.
    return good ? items.map((i) => `- ${i}`).join('\n') : `${items[0]}, ${items[1]} and ${items[2]}.`
  },
})
