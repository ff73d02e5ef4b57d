// Principle sets: the list and the editor (a used version is kept; saving it makes the next one).
import { api } from './api.js'
import { field, h, notice, showError, view, when } from './dom.js'
import { flashNext } from './page.js'

export function principleSetsPage() {
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

export async function principleSetEditor(id) {
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
            flashNext('Saved.')
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
