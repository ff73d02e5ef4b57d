// The models the service knows, read once per page load: names for the runs list, kinds for the
// samples' noise hint, and the new-run form's defaults.
import { api } from './api.js'

/** @type {Map<string, object>} id → model JSON */
const models = new Map()
let loading

/** All known models; `refresh` asks the service again (the new-run form wants the newest list). */
export async function loadModels({ refresh = false } = {}) {
  if (refresh || !loading)
    loading = api.listModels().then((page) => {
      for (const m of page.items) models.set(m.id, m)
    })
  try {
    await loading
  } catch (e) {
    loading = undefined
    throw e
  }
  return [...models.values()]
}

export function modelName(id) {
  return models.get(id)?.name
}

export function rememberModel(model) {
  models.set(model.id, model)
}

/** The built-in tiny model has random weights: what it writes is noise until trained a long while. */
export function isRandomModel(id) {
  return models.get(id)?.kind === 'builtin_tiny'
}
