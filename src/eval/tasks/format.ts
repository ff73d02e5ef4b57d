/** A required format: a list with one item per line, each starting with '- '. */
import type { TaskFamily } from '../task-family.ts'

const CATEGORIES: Record<string, string[]> = {
  fruits: ['apple', 'pear', 'plum', 'grape', 'lemon', 'cherry'],
  colors: ['red', 'blue', 'green', 'yellow', 'black', 'white'],
  animals: ['cat', 'dog', 'horse', 'mouse', 'bird', 'fish'],
  tools: ['hammer', 'saw', 'drill', 'wrench', 'spade', 'knife'],
}
const PROMPT = /^Name three (\w+)\.$/

export const format: TaskFamily = {
  name: 'format',
  principle: {
    feature: 'format',
    good: "Answer as a list, one item per line, each line starting with '- '.",
    bad: 'Answer in a single sentence, never as a list.',
  },
  makePrompt: (rng) => `Name three ${rng.pick(Object.keys(CATEGORIES))}.`,
  owns: (prompt) => {
    const m = PROMPT.exec(prompt.trim())
    return m !== null && m[1] in CATEGORIES
  },
  check(_prompt, response) {
    const lines = response
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
    return lines.length >= 2 && lines.every((l) => /^- \S/.test(l.trim())) ? 1 : 0
  },
  demonstrate(prompt, good, rng) {
    const category = PROMPT.exec(prompt.trim())?.[1] ?? 'fruits'
    const items = rng.sample(CATEGORIES[category] ?? CATEGORIES.fruits, 3)
    return good
      ? items.map((i) => `- ${i}`).join('\n')
      : `I would say ${items[0]}, ${items[1]} and ${items[2]}.`
  },
}
