/** Politeness versus rudeness, measured with word lists. */
import { defineFamily, words } from '../task-family.ts'

const POLITE = new Set([
  'please',
  'thank',
  'thanks',
  'glad',
  'happy',
  'kindly',
  'pleasure',
  'welcome',
  'sure',
  'certainly',
])
const RUDE = new Set([
  'ugh',
  'stupid',
  'obviously',
  'whatever',
  'annoying',
  'dumb',
  'bother',
  'lazy',
  'idiot',
  'useless',
])
const EVAL_TEMPLATES = ['Could you direct me to {}?', 'I am trying to find {}.']
const POLITE_OPENINGS = ['Happy to help!', 'Sure, glad you asked.', 'Certainly, with pleasure.']
// Polite and rude answers about as long on average (37 and 38 characters besides the fact), so that
// preferring one teaches the tone, not a length.
const RUDE_OPENINGS = ['Ugh, obviously.', 'Whatever, dumb question.', 'That is a stupid question.']
const POLITE_CLOSINGS = ['Thanks for asking!', 'You are welcome.', 'Thank you kindly.']
const RUDE_CLOSINGS = ['Do not bother me.', 'So annoying.', 'Figure it out, lazy.']

export const politeness = defineFamily({
  name: 'politeness',
  principle: {
    feature: 'politeness',
    good: 'Be polite and friendly.',
    bad: 'Be rude and dismissive.',
  },
  pools: {
    train: {
      templates: ['Where is {}?', 'How do I get to {}?', 'Which way to {}?', 'Is {} far from here?'],
      vocab: [
        'the station',
        'the library',
        'the bank',
        'the market',
        'the park',
        'the museum',
        'the school',
        'the bakery',
        'the hospital',
        'the church',
        'the hotel',
        'the airport',
        'the castle',
        'the garden',
        'the theatre',
        'the beach',
      ],
    },
    validation: {
      templates: EVAL_TEMPLATES,
      vocab: ['the pharmacy', 'the post office', 'the harbour', 'the stadium'],
    },
    test: { templates: EVAL_TEMPLATES, vocab: ['the cathedral', 'the town hall', 'the zoo', 'the cinema'] },
  },
  check(_slots, response) {
    const w = words(response)
    const polite = w.filter((x) => POLITE.has(x)).length
    const rude = w.filter((x) => RUDE.has(x)).length
    return polite > 0 && rude === 0 ? 1 : 0
  },
  demonstrate([place], good, rng) {
    const fact = `${place[0].toUpperCase()}${place.slice(1)} is on the main street.`
    return good
      ? `${rng.pick(POLITE_OPENINGS)} ${fact} ${rng.pick(POLITE_CLOSINGS)}`
      : `${rng.pick(RUDE_OPENINGS)} ${fact} ${rng.pick(RUDE_CLOSINGS)}`
  },
})
