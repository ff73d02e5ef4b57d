// A run's event log: everything the stream carries except metrics and progress ticks.
import { api } from './api.js'
import { h, showError } from './dom.js'

export function eventsView(pane, id) {
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
