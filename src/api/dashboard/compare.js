// One metric of several runs on one chart.
import { api, HISTORY_POINTS, TERMINAL } from './api.js'
import { LineChart } from './chart.js'
import { h, notice, shortId, showError, view } from './dom.js'
import { every, onLeave } from './page.js'

export function comparePage(ids, key) {
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
