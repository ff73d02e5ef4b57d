// Datasets: upload a JSONL file (drop or pick), see its line-numbered problems or a preview of what
// was stored, read the formats with an example line each, and delete what no run uses.
import { api } from './api.js'
import { field, h, notice, showError, view, when } from './dom.js'

/** One valid line per format (docs/data-formats.md has the fields and rules). */
export const FORMAT_EXAMPLES = {
  queries: {
    use: 'prompts to generate from: sso, sso_v2 and pbaa runs',
    example: { prompt: 'What is 17 + 25?' },
  },
  preference_pairs: {
    use: 'a prompt with a chosen and a rejected answer: dpo, ipo and rm runs',
    example: { prompt: 'What is the capital of France?', chosen: 'Paris.', rejected: 'I think it is Lyon.' },
  },
  sft_pairs: {
    use: 'a prompt and the answer to learn: sft runs',
    example: { prompt: 'Name a primary colour.', response: 'Red.' },
  },
  sso_records: {
    use: 'complete SSO records (x, x+, x-, y+, y-, y0), as the reference repository writes them',
    example: {
      instruction: 'What is 6 times 7?',
      p_system: 'Be correct and concise.',
      n_system: 'Be wrong and rambling.',
      chosen: '42.',
      rejected: 'Well, maybe 48?',
      raw: '6 times 7 is 42.',
    },
  },
}

const PREVIEW_LINES = 5

export function datasetsPage() {
  const list = h('tbody')
  const result = h('div', { class: 'upload-result', 'data-testid': 'upload-result' })
  view().append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Datasets')),
    uploadForm(result, () => refresh()),
    result,
    formatHelp(),
    h(
      'table',
      { class: 'runs', 'data-testid': 'datasets-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['name', 'format', 'rows', 'size', 'created', ''].map((c) => h('th', {}, c)),
        ),
      ),
      list,
    ),
  )
  const refresh = async () => {
    try {
      const page = await api.listDatasets({ limit: 200 })
      list.replaceChildren(...page.items.map((d) => datasetRow(d, result, refresh)))
      if (page.items.length === 0)
        list.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No datasets yet.')))
    } catch (e) {
      showError(e)
    }
  }
  refresh()
}

function datasetRow(d, result, refresh) {
  return h(
    'tr',
    { 'data-dataset-id': d.id },
    h('td', {}, d.name),
    h('td', {}, d.format),
    h('td', {}, String(d.line_count)),
    h('td', {}, formatBytes(d.bytes)),
    h('td', {}, when(d.created_at)),
    h(
      'td',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'preview-dataset',
          onclick: async () => {
            try {
              showPreview(result, d, await api.datasetContent(d.id))
            } catch (e) {
              showError(e)
            }
          },
        },
        'Preview',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-testid': 'delete-dataset',
          onclick: async () => {
            if (!confirm(`Delete dataset '${d.name}'?`)) return
            try {
              await api.deleteDataset(d.id)
              notice(`Dataset '${d.name}' deleted.`, 'ok')
              result.replaceChildren()
              refresh()
            } catch (e) {
              showError(e)
            }
          },
        },
        'Delete',
      ),
    ),
  )
}

function uploadForm(result, uploaded) {
  const name = h('input', { name: 'dataset_name', 'data-testid': 'dataset-name', placeholder: 'name' })
  const format = h(
    'select',
    { name: 'dataset_format', 'data-testid': 'dataset-format' },
    Object.keys(FORMAT_EXAMPLES).map((f) => h('option', { value: f }, f)),
  )
  const picker = h('input', {
    type: 'file',
    accept: '.jsonl,.ndjson,.json,.txt,application/x-ndjson',
    'data-testid': 'dataset-file',
    onchange: () => picker.files[0] && upload(picker.files[0]),
  })
  const upload = async (file) => {
    // The file's name, less its extension, is the default dataset name.
    const datasetName = name.value.trim() || file.name.replace(/\.[^.]*$/, '') || 'dataset'
    const text = await file.text()
    notice('')
    result.replaceChildren(h('p', { class: 'muted' }, `Uploading ${file.name}…`))
    try {
      const stored = await api.uploadDataset(datasetName, format.value, text)
      notice(`Dataset '${stored.name}' stored: ${stored.line_count} rows.`, 'ok')
      showPreview(result, stored, text)
      uploaded()
    } catch (e) {
      showProblems(result, file.name, e)
    } finally {
      picker.value = '' // picking the same file again, once fixed, uploads it again
    }
  }
  const drop = h(
    'div',
    {
      class: 'drop-zone',
      'data-testid': 'drop-zone',
      ondragover: (e) => {
        e.preventDefault()
        drop.classList.add('over')
      },
      ondragleave: () => drop.classList.remove('over'),
      ondrop: (e) => {
        e.preventDefault()
        drop.classList.remove('over')
        const file = e.dataTransfer?.files?.[0]
        if (file) upload(file)
      },
    },
    'Drop a JSONL file here, or ',
    h('label', { class: 'button' }, 'choose one', picker),
  )
  return h(
    'form',
    { class: 'upload', 'data-testid': 'upload-form', onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'grid' }, field('Name (default: the file name)', name), field('Format', format)),
    drop,
  )
}

/** The API's answer to a bad file: its detail and every line-numbered problem it lists. */
function showProblems(result, fileName, error) {
  const problems = error?.problem?.errors ?? []
  result.replaceChildren(
    h(
      'div',
      { class: 'problems', 'data-testid': 'upload-errors' },
      h('p', {}, h('strong', {}, `${fileName} was not stored: `), error.message),
      problems.length
        ? h(
            'ul',
            {},
            problems
              .slice(0, 50)
              .map((p) =>
                h('li', {}, p.line ? h('strong', {}, `line ${p.line}: `) : `${p.path ?? ''} `, p.message),
              ),
          )
        : null,
    ),
  )
}

function showPreview(result, dataset, text) {
  const lines = text.split('\n').filter((l) => l.trim())
  result.replaceChildren(
    h(
      'div',
      { class: 'preview', 'data-testid': 'dataset-preview' },
      h(
        'p',
        {},
        h('strong', {}, dataset.name),
        ` (${dataset.format}, ${dataset.line_count} rows): the first ${Math.min(PREVIEW_LINES, lines.length)} lines`,
      ),
      h(
        'ol',
        {},
        lines.slice(0, PREVIEW_LINES).map((l) => h('li', {}, h('code', {}, l))),
      ),
    ),
  )
}

function formatHelp() {
  return h(
    'details',
    { class: 'format-help', 'data-testid': 'format-help' },
    h('summary', {}, 'File formats: one JSON object per line'),
    h(
      'dl',
      {},
      Object.entries(FORMAT_EXAMPLES).flatMap(([name, { use, example }]) => [
        h('dt', {}, h('code', {}, name), ` — ${use}`),
        h('dd', {}, h('code', {}, JSON.stringify(example))),
      ]),
    ),
    h(
      'p',
      { class: 'muted' },
      'Every line must parse and match its format; a file with a bad line is refused as a whole, with the line numbers. docs/data-formats.md lists every field and rule.',
    ),
  )
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
