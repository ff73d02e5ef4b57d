// A run's page: header with status and controls, and the charts, samples, events and details tabs.
import { api, followRun, HISTORY_POINTS, TERMINAL } from './api.js'
import { badge, h, notice, shortId, showError, view } from './dom.js'
import { eventsView } from './events.js'
import { rememberModel } from './models.js'
import { onLeave } from './page.js'
import { chartBoard } from './run-charts.js'
import { runStep } from './runs.js'
import { samplesView } from './samples.js'

export function runPage(id, tab) {
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
  const samples = samplesView(panes.samples, id, () => run?.model_id)
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
          rememberModel(model)
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
