// A run's samples: per iteration, the query, its principles and the y+, y-, y0 answers.
import { api } from './api.js'
import { h, showError, text } from './dom.js'
import { isRandomModel, loadModels } from './models.js'

function sampleCard(record, index) {
  const lengths = record.lengths ?? {
    'y+': record.chosen?.length,
    'y-': record.rejected?.length,
    y0: record.raw?.length,
  }
  // Checker verdicts, when the trainer attached them to the record.
  const verdicts = record.verdicts ?? record.checks
  const principles = record.principles ?? []
  const block = (label, value, cls) =>
    h('div', { class: `sample-text ${cls}` }, h('div', { class: 'label' }, label), h('pre', {}, text(value)))
  return h(
    'article',
    { class: 'sample', 'data-testid': 'sample' },
    h(
      'header',
      {},
      h('strong', {}, `#${index + 1} `),
      text(record.instruction ?? record.prompt ?? record.query),
    ),
    principles.length
      ? h(
          'div',
          { class: 'principles' },
          principles.map((p) => h('span', { class: 'chip' }, text(p))),
        )
      : null,
    h(
      'div',
      { class: 'sample-grid' },
      block('y+ (chosen)', record.chosen, 'chosen'),
      block('y− (rejected)', record.rejected, 'rejected'),
      block('y0 (raw)', record.raw, 'raw'),
    ),
    record.p_system || record.n_system
      ? h(
          'details',
          { class: 'contexts' },
          h('summary', {}, 'principle contexts (x+, x−)'),
          h(
            'div',
            { class: 'sample-grid' },
            block('x+', record.p_system, 'chosen'),
            block('x−', record.n_system, 'rejected'),
          ),
        )
      : null,
    h(
      'footer',
      { class: 'muted' },
      `lengths: ${Object.entries(lengths)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      verdicts ? h('span', { class: 'verdicts' }, ` · checker: ${text(verdicts)}`) : null,
    ),
  )
}

/** `modelId()`: the run's model, known once the run has loaded. */
export function samplesView(pane, id, modelId) {
  const select = h('select', { 'data-testid': 'iteration', onchange: () => render() })
  const list = h('div', { class: 'samples', 'data-testid': 'samples' })
  // A randomly initialised model writes token soup; say so, or a first user takes it for a bug.
  const noiseHint = h(
    'p',
    { class: 'hint', 'data-testid': 'noise-hint', hidden: true },
    'This run trains the built-in tiny model, which starts from random weights: its samples are ',
    "random tokens, not words, and stay so for a short run. Train a real or SFT'd model ",
    '(see docs/models.md) to read the answers.',
  )
  pane.append(h('div', { class: 'toolbar' }, h('label', {}, 'Iteration ', select)), noiseHint, list)
  let records = []
  function render() {
    const iterations = [...new Set(records.map((r) => r.iteration ?? 0))].sort((a, b) => a - b)
    const current = select.value
    select.replaceChildren(...iterations.map((i) => h('option', { value: String(i) }, String(i))))
    select.value = iterations.map(String).includes(current) ? current : String(iterations.at(-1) ?? '')
    const shown = records.filter((r) => String(r.iteration ?? 0) === select.value)
    list.replaceChildren(...shown.map((r, i) => sampleCard(r.record ?? r, i)))
    if (shown.length === 0)
      list.append(h('p', { class: 'muted' }, 'No samples yet: they appear at the end of each iteration.'))
  }
  const load = async () => {
    try {
      await loadModels().catch(() => {})
      noiseHint.hidden = !isRandomModel(modelId())
      const page = await api.samples(id, { limit: 500 })
      records = page.items
      render()
    } catch (e) {
      showError(e)
    }
  }
  return { load, refresh: () => pane.isConnected && load() }
}
