// A page's lifetime: what to stop when the user navigates away, polling that stops with it, and a
// message carried over to the next page.
import { notice, showError } from './dom.js'

let cleanup = []

export function onLeave(fn) {
  cleanup.push(fn)
}

/** Stops the timers and streams of the page being left. */
export function leavePage() {
  for (const fn of cleanup) fn()
  cleanup = []
}

let flash = ''

/** A message for the next page (set before navigating, shown once it has rendered). */
export function flashNext(message) {
  flash = message
}

export function showFlash() {
  notice(flash, 'ok')
  flash = ''
}

/** Calls `fn` now and `ms` after each call ends, until the page is left. */
export function every(ms, fn) {
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
