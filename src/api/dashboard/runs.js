// The runs list: live status of every run, the live workers, and the new-run form.
import { api } from './api.js'
import { badge, h, shortId, showError, view, when } from './dom.js'
import { loadModels, modelName } from './models.js'
import { newRunForm } from './new-run-form.js'
import { every } from './page.js'

export function runStep(run) {
  const step = run.current_step
  if (step === undefined || step === null) return ''
  return run.total_steps ? `${step}/${run.total_steps}` : String(step)
}

export function runsPage() {
  const selected = new Set()
  const tbody = h('tbody')
  const compareButton = h(
    'button',
    {
      'data-testid': 'compare',
      disabled: true,
      onclick: () => {
        location.hash = `#/compare?ids=${[...selected].join(',')}`
      },
    },
    'Compare selected',
  )
  const table = h(
    'table',
    { class: 'runs', 'data-testid': 'runs-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['', 'run', 'method', 'status', 'step', 'model', 'created'].map((c) => h('th', {}, c)),
      ),
    ),
    tbody,
  )
  const workers = h('div', { class: 'workers muted', 'data-testid': 'workers' })
  view().append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Runs'), compareButton),
    workers,
    newRunForm(),
    table,
  )
  every(2000, async () => {
    await loadModels().catch(() => {})
    api.listWorkers().then((list) => renderWorkers(workers, list.items), showError)
    const page = await api.listRuns({ limit: 100 })
    tbody.replaceChildren(
      ...page.items.map((run) =>
        h(
          'tr',
          { 'data-run-id': run.id },
          h(
            'td',
            {},
            h('input', {
              type: 'checkbox',
              checked: selected.has(run.id),
              onchange: (e) => {
                if (e.target.checked) selected.add(run.id)
                else selected.delete(run.id)
                compareButton.disabled = selected.size < 2
              },
            }),
          ),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.id)}` }, shortId(run.id))),
          h('td', {}, run.method ?? ''),
          h('td', {}, badge(run.status)),
          h('td', {}, runStep(run)),
          h('td', {}, modelName(run.model_id) ?? shortId(run.model_id)),
          h('td', {}, when(run.created_at)),
        ),
      ),
    )
    if (page.items.length === 0)
      tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No runs yet.')))
  })
}

/** One line per live worker: what it serves and how full it is (runs asking for a device wait for one). */
function renderWorkers(container, items) {
  if (items.length === 0) {
    container.replaceChildren('No live worker: queued runs wait until one starts.')
    return
  }
  container.replaceChildren(
    h('span', {}, `Workers (${items.length} live): `),
    ...items.map((w) =>
      h(
        'span',
        { class: 'worker', title: w.id, 'data-worker-id': w.id },
        `${w.hostname} · ${w.devices.join(', ')} · ${w.run_ids.length}/${w.concurrency} runs`,
      ),
    ),
  )
}
