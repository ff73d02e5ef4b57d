// The new-run form. Its defaults follow the service: the demo model, queries and principle set when
// they exist, and the model's recommended hyperparameters when it publishes some.
import { api } from './api.js'
import { field, h, notice, showError, when } from './dom.js'
import { loadModels } from './models.js'

const METHODS = ['sso', 'sso_v2', 'pbaa', 'dpo', 'ipo', 'sft', 'rm']
const DEVICES = ['auto', 'cpu', 'webgpu', 'cuda']
/** A run that finishes in about a minute on a CPU with the tiny model. */
const QUICK_HYPERPARAMETERS = { iterations: 2, max_new_tokens: 16, queries_per_iteration: 16, lr: 0.001 }

export function newRunForm() {
  const method = h(
    'select',
    { name: 'method' },
    METHODS.map((m) => h('option', { value: m }, m)),
  )
  const model = h('select', { name: 'model', 'data-testid': 'model' })
  const principleSet = h('select', { name: 'principle_set' }, h('option', { value: '' }, '(default)'))
  const datasets = h('select', { name: 'datasets', multiple: true, size: 3 })
  const device = h(
    'select',
    { name: 'device' },
    DEVICES.map((d) => h('option', { value: d }, d)),
  )
  const seed = h('input', { name: 'seed', type: 'number', value: '1', min: '0' })
  const hp = h('textarea', { name: 'hyperparameters', spellcheck: 'false' })
  // Tall enough to show the whole setting (the demo's recommendation is about 25 lines).
  const showHyperparameters = (value) => {
    hp.value = JSON.stringify(value, null, 2)
    hp.rows = Math.min(hp.value.split('\n').length, 30)
  }
  showHyperparameters(QUICK_HYPERPARAMETERS)
  const start = h('button', { type: 'submit', class: 'primary', 'data-testid': 'start-run' }, 'Start run')
  const form = h(
    'form',
    {
      class: 'new-run',
      'data-testid': 'new-run-form',
      onsubmit: async (e) => {
        e.preventDefault()
        let hyperparameters
        try {
          hyperparameters = JSON.parse(hp.value || '{}')
        } catch (err) {
          return notice(`Hyperparameters are not valid JSON: ${err.message}`)
        }
        const body = {
          method: method.value,
          model_id: model.value,
          hyperparameters,
          device: device.value,
          seed: Number(seed.value),
        }
        if (principleSet.value) body.principle_set_id = principleSet.value
        const ids = [...datasets.selectedOptions].map((o) => o.value)
        if (ids.length) body.dataset_ids = ids
        start.disabled = true
        try {
          const run = await api.createRun(body)
          location.hash = `#/runs/${encodeURIComponent(run.id)}`
        } catch (err) {
          showError(err)
        } finally {
          start.disabled = false
        }
      },
    },
    h(
      'details',
      { 'data-testid': 'new-run' },
      h('summary', {}, 'New run'),
      h(
        'div',
        { class: 'grid' },
        field('Method', method),
        field('Model', model),
        field('Principle set', principleSet),
        field('Datasets', datasets),
        field('Device', device),
        field('Seed', seed),
      ),
      field('Hyperparameters (JSON)', hp),
      start,
    ),
  )
  // The user's own hyperparameters are never overwritten by a model's recommendation.
  let hyperparametersEdited = false
  hp.addEventListener('input', () => {
    hyperparametersEdited = true
  })
  model.addEventListener('change', () => applyRecommended(model.value))
  const applyRecommended = async (modelId) => {
    if (!modelId || hyperparametersEdited) return
    const recommended = await api
      .getModel(modelId)
      .then((m) => m.recommended_hyperparameters)
      .catch(() => undefined)
    if (hyperparametersEdited || model.value !== modelId) return
    showHyperparameters(isPlainObject(recommended) ? recommended : QUICK_HYPERPARAMETERS)
  }
  Promise.all([
    fill(model, () => loadModels({ refresh: true }).then((items) => ({ items })), modelLabel, DEMO.model),
    fill(principleSet, api.listPrincipleSets, (p) => `${p.name} (v${p.version ?? 1})`, DEMO.principleSet),
    fill(datasets, () => api.listDatasets({ limit: 200 }), datasetLabel, DEMO.dataset),
  ]).then(() => applyRecommended(model.value))
  return form
}

/** The demo's resources, preselected when the service registered them. */
const DEMO = { model: 'demo', dataset: 'demo-queries', principleSet: 'demo' }

const modelLabel = (m) => `${m.name}${m.kind === 'builtin_tiny' ? ' (built-in, random weights)' : ''}`

/** Name, size and age: two uploads with one name stay apart. */
export const datasetLabel = (d) => `${d.name} · ${d.format} · ${d.line_count} rows · ${when(d.created_at)}`

const isPlainObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Adds the loaded items as options, and selects the one named `preferred` when it exists. */
async function fill(select, loader, label, preferred) {
  let items
  try {
    items = (await loader()).items
  } catch {
    return // Lists are conveniences; the form still works with the defaults.
  }
  for (const item of items) {
    if (![...select.options].some((o) => o.value === item.id))
      select.append(h('option', { value: item.id }, label(item)))
  }
  const demo = items.find((item) => item.name === preferred)
  if (!demo) return
  for (const option of select.options) if (option.value === demo.id) option.selected = true
}
