// The dashboard's entry: hash routing to the views and the API key box. Each view is its own module
// (runs, run page, compare, datasets, principle sets); plain ES modules, no build step.
import { api, getApiKey, setApiKey } from './api.js'
import { comparePage } from './compare.js'
import { datasetsPage } from './datasets.js'
import { h, notice, view } from './dom.js'
import { leavePage, showFlash } from './page.js'
import { principleSetEditor, principleSetsPage } from './principle-sets.js'
import { runPage } from './run-page.js'
import { runsPage } from './runs.js'

function route() {
  leavePage()
  showFlash()
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
  if (parts[0] === 'datasets') return datasetsPage()
  if (parts[0] === 'principle-sets' && parts[1]) return principleSetEditor(decodeURIComponent(parts[1]))
  if (parts[0] === 'principle-sets') return principleSetsPage()
  return runsPage()
}

/** The header names the key's project ('all projects' for an admin key that spans them). */
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
