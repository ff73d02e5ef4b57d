// The dashboard: runs list with live status, run pages with live charts, samples and events,
// run comparison and the principle-set editor. Plain ES modules, hash routing, no build step.
import { ApiError, api, followRun, getApiKey, setApiKey } from './api.js'
import { LineChart } from './chart.js'

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled'])
const METHODS = ['sso', 'sso_v2', 'pbaa', 'dpo', 'ipo', 'sft', 'rm']
const DEVICES = ['auto', 'cpu', 'webgpu', 'cuda']
/** A run that finishes in about a minute on a CPU with the tiny model. */
const QUICK_HYPERPARAMETERS = { iterations: 2, max_new_tokens: 16, queries_per_iteration: 16, lr: 0.001 }
/** History points per metric key asked from the server (it downsamples); live points are appended. */
const HISTORY_POINTS = 1000

/** Charts on a run page: each metric key goes to the first group that matches it. */
const CHART_GROUPS = [
  { id: 'loss', title: 'Loss', match: (k) => k === 'loss' || k.startsWith('loss/') || k === 'sso/l_main' },
  {
    id: 'accuracy',
    title: 'Reward accuracy',
    match: (k) => k.startsWith('rewards/') && k.includes('accurac'),
  },
  { id: 'rewards', title: 'Rewards and margins', match: (k) => k.startsWith('rewards/') },
  { id: 'lr', title: 'Learning rate', match: (k) => k === 'learning_rate' || k === 'lr' },
  { id: 'w', title: 'SSO W', match: (k) => k.startsWith('sso/w') },
  { id: 'g', title: 'SSO G', match: (k) => k === 'sso/g' || k.startsWith('sso/g_') },
  { id: 'gap', title: 'SSO gap', match: (k) => k.startsWith('sso/gap') },
  { id: 'on-policy', title: 'On-policyness', match: (k) => k.startsWith('sso/on_policy') },
  { id: 'lengths', title: 'Lengths', match: (k) => k.includes('length') },
  { id: 'logps', title: 'Log-probs', match: (k) => k.startsWith('logps/') },
  { id: 'signal', title: 'Signal accuracy (checkers)', match: (k) => k.startsWith('signal_accuracy') },
  { id: 'grad-norm', title: 'Gradient norm', match: (k) => k === 'grad_norm' },
  { id: 'throughput', title: 'Throughput', match: (k) => k.endsWith('per_second') },
  {
    id: 'iteration',
    title: 'Iteration data',
    match: (k) => k.startsWith('iteration/') || k === 'signal_checked',
  },
  { id: 'other', title: 'Other metrics', match: () => true },
]

// ---------------------------------------------------------------- DOM helpers

/** h('div', { class: 'x', onclick }, child, 'text') — text always goes in as text, never as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'class') el.className = v
    else if (k === 'value') el.value = v
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c)
  return el
}

const view = () => document.getElementById('view')

function notice(message, kind = 'error') {
  const box = document.getElementById('notice')
  box.textContent = message
  box.className = message ? `notice ${kind}` : 'notice'
}

function showError(e) {
  if (e instanceof ApiError && e.status === 401) notice('This needs an API key: enter one at the top right.')
  else notice(e instanceof Error ? e.message : String(e))
}

function badge(status) {
  return h('span', { class: `badge status-${status}`, 'data-testid': 'status' }, status)
}

function shortId(id) {
  return String(id).slice(0, 8)
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : ''
}

function runStep(run) {
  const step = run.current_step
  if (step === undefined || step === null) return ''
  return run.total_steps ? `${step}/${run.total_steps}` : String(step)
}

/** Model names by id, filled from GET /v1/models once. */
const modelNames = new Map()
async function loadModelNames() {
  if (modelNames.size > 0) return
  const page = await api.listModels()
  for (const m of page.items) modelNames.set(m.id, m.name)
}

// ---------------------------------------------------------------- routing

let cleanup = []
function onLeave(fn) {
  cleanup.push(fn)
}

/** A message for the next page (set before navigating, shown once it has rendered). */
let flash = ''

function route() {
  for (const fn of cleanup) fn()
  cleanup = []
  notice(flash, 'ok')
  flash = ''
  const [path, queryString] = location.hash.replace(/^#/, '').split('?')
  const query = new URLSearchParams(queryString ?? '')
  const parts = path.split('/').filter(Boolean)
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#/${parts[0] ?? ''}`)
  }
  view().innerHTML = ''
  if (parts[0] === 'runs' && parts[1])
    return runPage(decodeURIComponent(parts[1]), query.get('tab') ?? 'charts')
  if (parts[0] === 'compare')
    return comparePage((query.get('ids') ?? '').split(',').filter(Boolean), query.get('key'))
  if (parts[0] === 'principle-sets' && parts[1]) return principleSetEditor(decodeURIComponent(parts[1]))
  if (parts[0] === 'principle-sets') return principleSetsPage()
  return runsPage()
}

function every(ms, fn) {
  let timer
  let alive = true
  const tick = async () => {
    try {
      await fn()
    } catch (e) {
      showError(e)
    }
    if (alive) timer = setTimeout(tick, ms)
  }
  tick()
  onLeave(() => {
    alive = false
    clearTimeout(timer)
  })
}

// ---------------------------------------------------------------- runs list + new run form

function runsPage() {
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
    await loadModelNames().catch(() => {})
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
          h('td', {}, modelNames.get(run.model_id) ?? shortId(run.model_id)),
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

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input)
}

function newRunForm() {
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
  const hp = h('textarea', { name: 'hyperparameters', rows: 5, spellcheck: 'false' })
  hp.value = JSON.stringify(QUICK_HYPERPARAMETERS, null, 2)
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
  const fill = async (select, loader, label) => {
    try {
      const page = await loader()
      for (const item of page.items) {
        if (![...select.options].some((o) => o.value === item.id))
          select.append(h('option', { value: item.id }, label(item)))
      }
    } catch {
      // Lists are conveniences; the form still works with the defaults.
    }
  }
  fill(model, api.listModels, (m) => `${m.name}${m.kind === 'builtin_tiny' ? ' (built-in)' : ''}`)
  fill(principleSet, api.listPrincipleSets, (p) => `${p.name} (v${p.version ?? 1})`)
  fill(datasets, api.listDatasets, (d) => `${d.name} (${d.format})`)
  return form
}

// ---------------------------------------------------------------- run page

function runPage(id, tab) {
  const status = h('span', { 'data-testid': 'run-status' })
  const step = h('span', { class: 'muted', 'data-testid': 'run-step' })
  const live = h('span', { class: 'live', 'data-testid': 'stream-state' }, 'connecting')
  const phase = h('span', { class: 'muted', 'data-testid': 'run-phase' })
  const buttons = ['pause', 'resume', 'cancel'].map((name) =>
    h(
      'button',
      {
        'data-testid': name,
        class: name === 'cancel' ? 'danger' : '',
        onclick: async () => {
          try {
            const run = await api.action(id, name)
            if (run?.status) setRun(run)
          } catch (e) {
            showError(e)
          }
        },
      },
      name[0].toUpperCase() + name.slice(1),
    ),
  )
  const tabs = ['charts', 'samples', 'events', 'details']
  const panes = Object.fromEntries(tabs.map((t) => [t, h('section', { class: 'pane', 'data-pane': t })]))
  const tabBar = h(
    'div',
    { class: 'tabs' },
    tabs.map((t) =>
      h(
        'button',
        {
          'data-testid': `tab-${t}`,
          'data-tab': t,
          onclick: () => selectTab(t),
        },
        t[0].toUpperCase() + t.slice(1),
      ),
    ),
  )
  const title = h('h2', {}, `Run ${shortId(id)}`)
  view().append(
    h(
      'div',
      { class: 'toolbar' },
      h('a', { href: '#/' }, '← runs'),
      title,
      status,
      step,
      phase,
      live,
      h('span', { class: 'spacer' }),
      ...buttons,
    ),
    tabBar,
    ...Object.values(panes),
  )

  let run
  function setRun(next) {
    run = { ...run, ...next }
    status.replaceChildren(badge(run.status))
    step.textContent = runStep(run) ? `step ${runStep(run)}` : ''
    title.textContent = `Run ${shortId(id)} · ${run.method ?? ''}`
    const s = run.status
    buttons[0].disabled = !(s === 'running' || s === 'queued')
    buttons[1].disabled = s !== 'paused'
    buttons[2].disabled = TERMINAL.has(s) || s === 'cancelling'
    renderDetails(panes.details, run)
  }

  const loaded = new Set()
  function selectTab(t) {
    for (const b of tabBar.children) b.classList.toggle('active', b.dataset.tab === t)
    for (const [name, pane] of Object.entries(panes)) pane.hidden = name !== t
    if (!loaded.has(t)) {
      loaded.add(t)
      if (t === 'samples') samples.load()
      if (t === 'events') events.load()
    }
    history.replaceState(null, '', `#/runs/${encodeURIComponent(id)}?tab=${t}`)
  }

  const charts = chartBoard(panes.charts)
  const samples = samplesView(panes.samples, id)
  const events = eventsView(panes.events, id)
  selectTab(tabs.includes(tab) ? tab : 'charts')

  let left = false
  onLeave(() => {
    left = true
  })
  const start = async () => {
    try {
      setRun(await api.getRun(id))
    } catch (e) {
      return showError(e)
    }
    let lastStep = -1
    try {
      const history = await api.metrics(id, { maxPoints: HISTORY_POINTS })
      for (const [key, points] of history) {
        charts.setSeries(key, points)
        for (const [s] of points) lastStep = Math.max(lastStep, s)
      }
    } catch (e) {
      showError(e)
    }
    if (left) return
    const stop = followRun(
      id,
      lastStep,
      (frame) => {
        const data = frame.data ?? {}
        if (typeof data.total_steps === 'number') setRun({ total_steps: data.total_steps })
        if (frame.type === 'metrics') {
          for (const [key, value] of Object.entries(data.values ?? data)) {
            if (typeof value === 'number') charts.addPoint(key, frame.step, value)
          }
          setRun({ current_step: frame.step })
          return
        }
        if (typeof data.phase === 'string') {
          const count = frame.type === 'progress' ? ` ${data.done}/${data.total}` : ''
          const iteration = typeof data.iteration === 'number' ? ` · iteration ${data.iteration}` : ''
          phase.textContent = `${data.phase}${count}${iteration}`
        }
        events.add(frame)
        // The samples frame is written beside the rows themselves; read them a moment later.
        if (frame.type === 'samples' || frame.type === 'iteration_end') setTimeout(samples.refresh, 500)
        if (frame.type === 'status' && typeof data.status === 'string') {
          setRun({ status: data.status })
          if (TERMINAL.has(data.status)) {
            phase.textContent = ''
            live.textContent = 'ended'
            api.getRun(id).then(setRun, showError)
          }
        }
      },
      (state) => {
        live.textContent = TERMINAL.has(run?.status) ? 'ended' : state
      },
    )
    onLeave(stop)
  }
  start()
  onLeave(() => charts.destroy())
}

function renderDetails(pane, run) {
  const json = h('pre', { class: 'json' }, JSON.stringify(run, null, 2))
  const shown = pane.querySelector('pre.json')
  if (shown) shown.replaceWith(json)
  else pane.append(json)
  // The form is added once and never moved, so updates of the run leave a name being typed (or a
  // click on its button) alone.
  if (run.status === 'succeeded' && run.method !== 'rm' && !pane.querySelector('form'))
    pane.prepend(registerModelForm(run))
}

/** Registers a succeeded run's final model, so that new runs can start from it. */
function registerModelForm(run) {
  const name = h('input', {
    name: 'model_name',
    'data-testid': 'model-name',
    placeholder: 'model name',
    value: `run-${shortId(run.id)}`,
  })
  return h(
    'form',
    {
      class: 'inline-form',
      'data-testid': 'register-model',
      onsubmit: async (e) => {
        e.preventDefault()
        try {
          const model = await api.registerRunModel(run.id, name.value.trim())
          modelNames.set(model.id, model.name)
          notice(`Model '${model.name}' registered: pick it in the new-run form.`, 'ok')
        } catch (err) {
          showError(err)
        }
      },
    },
    h('span', {}, 'Train further from this run: '),
    name,
    h('button', { type: 'submit', 'data-testid': 'register-model-submit' }, 'Register final model'),
  )
}

/** The run page's chart grid: one chart per metric group, created when its first key arrives. */
function chartBoard(container) {
  const grid = h('div', { class: 'chart-grid' })
  container.append(grid)
  const charts = new Map()
  const chartFor = (key) => {
    const group = CHART_GROUPS.find((g) => g.match(key))
    if (!charts.has(group.id)) {
      const box = h('div', { 'data-testid': `chart-${group.id}` })
      const order = CHART_GROUPS.indexOf(group)
      const after = [...grid.children].find((el) => Number(el.dataset.order) > order)
      box.dataset.order = String(order)
      grid.insertBefore(box, after ?? null)
      charts.set(group.id, new LineChart(box, { title: group.title }))
    }
    return charts.get(group.id)
  }
  chartFor('loss')
  return {
    setSeries: (key, points) => chartFor(key).setSeries(key, points),
    addPoint: (key, step, value) => chartFor(key).addPoint(key, step, value),
    destroy: () => {
      for (const c of charts.values()) c.destroy()
    },
  }
}

// ---------------------------------------------------------------- samples

function text(value) {
  if (value === undefined || value === null) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}

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

function samplesView(pane, id) {
  const select = h('select', { 'data-testid': 'iteration', onchange: () => render() })
  const list = h('div', { class: 'samples', 'data-testid': 'samples' })
  pane.append(h('div', { class: 'toolbar' }, h('label', {}, 'Iteration ', select)), list)
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
      const page = await api.samples(id, { limit: 500 })
      records = page.items
      render()
    } catch (e) {
      showError(e)
    }
  }
  return { load, refresh: () => pane.isConnected && load() }
}

// ---------------------------------------------------------------- events

function eventsView(pane, id) {
  const list = h('ol', { class: 'events', 'data-testid': 'events' })
  pane.append(list)
  /** Event rows and stream frames share one shape ({ seq, type, step, data }); kept in seq order. */
  const rows = new Map()
  const describe = (e) => {
    const d = e.data ?? {}
    if (typeof d.message === 'string') return d.message
    if (e.type === 'status') return `status ${d.status}`
    return JSON.stringify(d)
  }
  const render = (e) =>
    h(
      'li',
      { class: `event event-${e.type}`, 'data-seq': e.seq },
      h('time', {}, new Date(e.created_at ?? e.ts).toLocaleTimeString()),
      h('span', { class: 'event-type' }, e.type),
      h('span', { class: 'muted' }, `step ${e.step}`),
      h('span', {}, describe(e)),
    )
  const add = (e) => {
    // Metrics are charted and progress ticks shown in the header; the log keeps the rest.
    if (e.type === 'metrics' || e.type === 'progress' || rows.has(e.seq)) return
    rows.set(e.seq, e)
    const last = list.lastElementChild
    if (!last || Number(last.dataset.seq) < e.seq) list.append(render(e))
    else list.replaceChildren(...[...rows.values()].sort((a, b) => a.seq - b.seq).map(render))
  }
  const MAX_PAGES = 10
  const load = async () => {
    try {
      let after
      for (let i = 0; i < MAX_PAGES; i++) {
        const page = await api.events(id, { limit: 1000, after_seq: after })
        for (const e of page.items) add(e)
        if (page.next_after_seq === null) return
        after = page.next_after_seq
      }
    } catch (e) {
      showError(e)
    }
  }
  return { add, load }
}

// ---------------------------------------------------------------- compare

function comparePage(ids, key) {
  const select = h('select', { 'data-testid': 'compare-key' })
  const box = h('div', { 'data-testid': 'compare-chart', class: 'wide-chart' })
  view().append(
    h(
      'div',
      { class: 'toolbar' },
      h('a', { href: '#/' }, '← runs'),
      h('h2', {}, `Compare ${ids.length} runs`),
      h('label', {}, 'Metric ', select),
    ),
    box,
  )
  if (ids.length < 2) return notice('Select two or more runs on the runs page to compare them.')
  let chart = new LineChart(box, { title: key ?? 'loss' })
  onLeave(() => chart.destroy())
  const names = new Map()
  const keys = new Set(['loss'])
  const load = async () => {
    const current = select.value || key || 'loss'
    let running = false
    for (const id of ids) {
      const run = await api.getRun(id)
      running ||= !TERMINAL.has(run.status)
      names.set(id, `${shortId(id)} ${run.method ?? ''}`)
      const series = await api.metrics(id, { keys: [current], maxPoints: HISTORY_POINTS })
      chart.setSeries(names.get(id), series.get(current) ?? [])
    }
    return running
  }
  select.addEventListener('change', () => {
    chart.destroy()
    chart = new LineChart(box, { title: select.value })
    history.replaceState(null, '', `#/compare?ids=${ids.join(',')}&key=${encodeURIComponent(select.value)}`)
    load().catch(showError)
  })
  const discoverKeys = async () => {
    for (const id of ids) for (const k of (await api.metrics(id, { maxPoints: 2 })).keys()) keys.add(k)
    select.replaceChildren(...[...keys].sort().map((k) => h('option', { value: k }, k)))
    select.value = key && keys.has(key) ? key : 'loss'
  }
  let stillRunning = true
  discoverKeys()
    .catch(showError)
    .then(() =>
      every(5000, async () => {
        if (stillRunning) stillRunning = await load()
      }),
    )
}

// ---------------------------------------------------------------- principle sets

function principleSetsPage() {
  const list = h('tbody')
  view().append(
    h(
      'div',
      { class: 'toolbar' },
      h('h2', {}, 'Principle sets'),
      h(
        'a',
        { class: 'button primary', href: '#/principle-sets/new', 'data-testid': 'new-principle-set' },
        'New set',
      ),
    ),
    h(
      'table',
      { class: 'runs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['name', 'version', 'principles', 'updated'].map((c) => h('th', {}, c)),
        ),
      ),
      list,
    ),
  )
  api
    .listPrincipleSets()
    .then((page) => {
      list.replaceChildren(
        ...page.items.map((p) =>
          h(
            'tr',
            {},
            h('td', {}, h('a', { href: `#/principle-sets/${encodeURIComponent(p.id)}` }, p.name)),
            h('td', {}, String(p.version ?? 1)),
            h('td', {}, String(p.principles?.length ?? '')),
            h('td', {}, when(p.updated_at ?? p.created_at)),
          ),
        ),
      )
      if (page.items.length === 0)
        list.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No principle sets yet.')))
    })
    .catch(showError)
}

function principleRow(p = { feature: '', good: '', bad: '' }) {
  const row = h(
    'div',
    { class: 'principle', 'data-testid': 'principle' },
    h('input', { name: 'feature', placeholder: 'feature (e.g. concise)', value: p.feature }),
    h(
      'textarea',
      { name: 'good', rows: 2, placeholder: 'good: what a response with this feature does' },
      p.good,
    ),
    h('textarea', { name: 'bad', rows: 2, placeholder: 'bad: the contrasting behaviour' }, p.bad),
    h('button', { type: 'button', class: 'danger', title: 'remove', onclick: () => row.remove() }, '×'),
  )
  return row
}

function readPrinciple(row) {
  const get = (name) => row.querySelector(`[name=${name}]`).value.trim()
  return { feature: get('feature'), good: get('good'), bad: get('bad') }
}

async function principleSetEditor(id) {
  const isNew = id === 'new'
  let set = { name: '', principles: [{ feature: '', good: '', bad: '' }] }
  if (!isNew) {
    try {
      set = await api.getPrincipleSet(id)
    } catch (e) {
      return showError(e)
    }
  }
  const name = h('input', {
    name: 'name',
    'data-testid': 'principle-set-name',
    value: set.name,
    required: true,
  })
  const rows = h(
    'div',
    { class: 'principles-editor' },
    (set.principles ?? []).map((p) => principleRow(p)),
  )
  const concision = set.concision ? principleRow(set.concision) : null
  const save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'save-principle-set' }, 'Save')
  const form = h(
    'form',
    {
      class: 'editor',
      onsubmit: async (e) => {
        e.preventDefault()
        const principles = [...rows.children].map(readPrinciple).filter((p) => p.feature || p.good || p.bad)
        const incomplete = principles.find((p) => !p.feature || !p.good || !p.bad)
        if (incomplete)
          return notice(
            `Principle '${incomplete.feature || '(no feature)'}' needs a feature, a good and a bad text.`,
          )
        const body = { name: name.value.trim(), principles }
        if (concision) body.concision = readPrinciple(concision)
        save.disabled = true
        try {
          const saved = isNew ? await api.createPrincipleSet(body) : await api.updatePrincipleSet(id, body)
          if (isNew) {
            // Reopen the editor on the stored set, so the next save updates it.
            flash = 'Saved.'
            location.hash = `#/principle-sets/${encodeURIComponent(saved.id)}`
            return
          }
          notice(
            saved.version !== set.version
              ? `Saved as version ${saved.version} (version ${set.version} is used by a run and stays as it was).`
              : 'Saved.',
            'ok',
          )
          set = saved
        } catch (err) {
          showError(err)
        } finally {
          save.disabled = false
        }
      },
    },
    field('Name', name),
    h('h3', {}, 'Principles'),
    rows,
    h(
      'button',
      { type: 'button', 'data-testid': 'add-principle', onclick: () => rows.append(principleRow()) },
      'Add principle',
    ),
    concision ? h('div', {}, h('h3', {}, 'Concision (appended with a probability)'), concision) : null,
    h(
      'div',
      { class: 'toolbar' },
      save,
      isNew
        ? null
        : h(
            'button',
            {
              type: 'button',
              class: 'danger',
              onclick: async () => {
                if (!confirm(`Delete principle set '${set.name}'?`)) return
                try {
                  await api.deletePrincipleSet(id)
                  location.hash = '#/principle-sets'
                } catch (err) {
                  showError(err)
                }
              },
            },
            'Delete',
          ),
    ),
  )
  view().append(
    h(
      'div',
      { class: 'toolbar' },
      h('a', { href: '#/principle-sets' }, '← principle sets'),
      h('h2', {}, isNew ? 'New principle set' : `Principle set ${set.name}`),
    ),
    form,
  )
}

// ---------------------------------------------------------------- API key + start

/** The project the saved key acts in, next to the brand (an admin key may span every project). */
async function showProject() {
  let label = document.getElementById('project')
  if (!label) {
    label = h('span', { id: 'project', class: 'muted', 'data-testid': 'project' })
    document.querySelector('header .brand').after(label)
  }
  const me = getApiKey() ? await api.whoami().catch(() => null) : null
  label.textContent = me ? (me.project ? `project ${me.project.name}` : 'all projects') : ''
}

function keyBox() {
  const input = document.getElementById('api-key')
  input.value = getApiKey()
  document.getElementById('key-form').addEventListener('submit', (e) => {
    e.preventDefault()
    setApiKey(input.value.trim())
    route()
    showProject()
    notice(input.value.trim() ? 'API key saved in this browser.' : 'API key removed.', 'ok')
  })
}

keyBox()
showProject()
window.addEventListener('hashchange', route)
route()
