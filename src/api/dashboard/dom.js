// Shared by every view: element building, the notice line, and the formats the pages print.
import { ApiError } from './api.js'

/** h('div', { class: 'x', onclick }, child, 'text') — text always goes in as text, never as HTML. */
export function h(tag, attrs = {}, ...children) {
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

export const view = () => document.getElementById('view')

export function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input)
}

export function notice(message, kind = 'error') {
  const box = document.getElementById('notice')
  box.textContent = message
  box.className = message ? `notice ${kind}` : 'notice'
}

export function showError(e) {
  if (e instanceof ApiError && e.status === 401) notice('This needs an API key: enter one at the top right.')
  else notice(e instanceof Error ? e.message : String(e))
}

export function badge(status) {
  return h('span', { class: `badge status-${status}`, 'data-testid': 'status' }, status)
}

export function shortId(id) {
  return String(id).slice(0, 8)
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : ''
}

export function text(value) {
  if (value === undefined || value === null) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}
