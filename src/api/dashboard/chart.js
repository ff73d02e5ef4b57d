// A small canvas line chart: several series of (step, value) points, linear axes with round ticks and
// titles, a legend, an optional smoothed line, a one-line reading guide, and a hover read-out of the
// nearest step. No dependencies; redraws at most once a frame.

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f']

/**
 * Round tick values covering [min, max] with about `count` ticks (1, 2, 5 × 10^k steps); `integer`
 * keeps the step at 1 or more (training steps have no fractions).
 */
export function niceTicks(min, max, count = 5, { integer = false } = {}) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return []
  if (min === max) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1
    min -= pad
    max += pad
  }
  const raw = (max - min) / Math.max(1, count)
  const mag = 10 ** Math.floor(Math.log10(raw))
  const round = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const step = integer ? Math.max(1, round) : round
  const ticks = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)))
  return ticks
}

export function formatNumber(v) {
  if (v === 0) return '0'
  const a = Math.abs(v)
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2)
  if (a >= 100) return v.toFixed(0)
  return Number(v.toPrecision(4)).toString()
}

/**
 * One number format for all ticks of an axis, with just enough digits that neighbouring ticks differ
 * (so 0.9985 and 0.999 are not both printed as 0.999, and 9.0e-4 never sits beside 0.0011).
 */
export function tickFormat(ticks) {
  if (ticks.length < 2) return formatNumber
  const step = Math.abs(ticks[1] - ticks[0])
  const largest = Math.max(...ticks.map(Math.abs))
  if (largest >= 1e5 || largest < 1e-3) {
    const digits = Math.min(6, Math.max(1, Math.ceil(Math.log10(largest / step))))
    return (v) => (v === 0 ? '0' : v.toExponential(digits))
  }
  const decimals = Math.min(10, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)))
  return (v) => v.toFixed(decimals)
}

/** Exponential moving average (the weight of the previous value is `weight`), as TensorBoard smooths. */
export function smooth(points, weight = 0.8) {
  let last
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y]
    last = last === undefined ? y : last * weight + (1 - weight) * y
    return [x, last]
  })
}

/** Keeps at most `max` points by taking the first, min and max of equal-width step buckets. */
export function decimate(points, max) {
  if (points.length <= max) return points
  const buckets = Math.max(1, Math.floor(max / 2))
  const size = points.length / buckets
  const out = []
  for (let b = 0; b < buckets; b++) {
    const slice = points.slice(Math.floor(b * size), Math.floor((b + 1) * size))
    if (slice.length === 0) continue
    let lo = slice[0]
    let hi = slice[0]
    for (const p of slice) {
      if (p[1] < lo[1]) lo = p
      if (p[1] > hi[1]) hi = p
    }
    if (lo === hi) out.push(lo)
    else out.push(...(lo[0] < hi[0] ? [lo, hi] : [hi, lo]))
  }
  return out
}

export class LineChart {
  /** @param {HTMLElement} container */
  /**
   * `yLabel`: the value axis' title (its unit); `note`: one line on how to read the curve;
   * `smoothing`: draw an EMA over the points, the raw points faint behind it (toggled by a checkbox).
   */
  constructor(container, { title = '', maxPoints = 2000, yLabel = '', note = '', smoothing = false } = {}) {
    this.container = container
    this.title = title
    this.yLabel = yLabel
    this.smoothing = smoothing
    this.maxPoints = maxPoints
    /** @type {Map<string, [number, number][]>} */
    this.series = new Map()
    this.colors = new Map()
    this.hoverX = null
    container.classList.add('chart')
    container.innerHTML = ''
    const heading = document.createElement('div')
    heading.className = 'chart-title'
    heading.textContent = title
    const toggle = document.createElement('label')
    toggle.className = 'chart-smoothing'
    const box = document.createElement('input')
    box.type = 'checkbox'
    box.checked = smoothing
    box.dataset.testid = 'smoothing'
    box.addEventListener('change', () => this.setSmoothing(box.checked))
    toggle.append(box, ' smooth')
    heading.append(toggle)
    const guide = document.createElement('div')
    guide.className = 'chart-note'
    guide.textContent = note
    this.legend = document.createElement('div')
    this.legend.className = 'chart-legend'
    this.canvas = document.createElement('canvas')
    this.readout = document.createElement('div')
    this.readout.className = 'chart-readout'
    container.append(heading, ...(note ? [guide] : []), this.legend, this.canvas, this.readout)
    this.canvas.addEventListener('mousemove', (e) => {
      this.hoverX = e.offsetX
      this.schedule()
    })
    this.canvas.addEventListener('mouseleave', () => {
      this.hoverX = null
      this.readout.textContent = ''
      this.schedule()
    })
    this.resizeObserver = new ResizeObserver(() => this.schedule())
    this.resizeObserver.observe(container)
    this.schedule()
  }

  color(name) {
    if (!this.colors.has(name)) this.colors.set(name, PALETTE[this.colors.size % PALETTE.length])
    return this.colors.get(name)
  }

  /** Replaces a series (sorted by step). */
  setSeries(name, points) {
    this.series.set(
      name,
      decimate(
        [...points].sort((a, b) => a[0] - b[0]),
        this.maxPoints,
      ),
    )
    this.color(name)
    this.changed()
  }

  /** Appends live points; a step already present is replaced (a re-sent frame never doubles a point). */
  addPoint(name, step, value) {
    let pts = this.series.get(name)
    if (!pts) {
      pts = []
      this.series.set(name, pts)
      this.color(name)
    }
    const last = pts[pts.length - 1]
    if (last && last[0] === step) last[1] = value
    else if (!last || last[0] < step) pts.push([step, value])
    else return
    if (pts.length > this.maxPoints * 2) this.series.set(name, decimate(pts, this.maxPoints))
    this.changed()
  }

  setSmoothing(on) {
    this.smoothing = on
    this.container.dataset.smoothing = String(on)
    this.schedule()
  }

  pointCount() {
    let n = 0
    for (const pts of this.series.values()) n += pts.length
    return n
  }

  changed() {
    this.container.dataset.points = String(this.pointCount())
    this.schedule()
  }

  schedule() {
    if (this.frame) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.draw()
    })
  }

  destroy() {
    this.resizeObserver.disconnect()
    if (this.frame) cancelAnimationFrame(this.frame)
  }

  drawLegend() {
    const names = [...this.series.keys()]
    const html = names
      .map((n) => `<span><i style="background:${this.color(n)}"></i>${n.replace(/[<>&]/g, '')}</span>`)
      .join('')
    if (this.legend.innerHTML !== html) this.legend.innerHTML = html
  }

  draw() {
    this.drawLegend()
    const dpr = window.devicePixelRatio || 1
    const width = this.canvas.clientWidth
    const height = this.canvas.clientHeight
    if (width === 0 || height === 0) return
    this.canvas.width = Math.round(width * dpr)
    this.canvas.height = Math.round(height * dpr)
    const ctx = this.canvas.getContext('2d')
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, width, height)
    ctx.font = '11px system-ui, sans-serif'

    let xMin = Infinity
    let xMax = -Infinity
    let yMin = Infinity
    let yMax = -Infinity
    for (const pts of this.series.values()) {
      for (const [x, y] of pts) {
        if (!Number.isFinite(y)) continue
        if (x < xMin) xMin = x
        if (x > xMax) xMax = x
        if (y < yMin) yMin = y
        if (y > yMax) yMax = y
      }
    }
    if (xMin === Infinity) {
      ctx.fillStyle = '#888'
      ctx.fillText('waiting for data…', 12, height / 2)
      return
    }
    if (xMin === xMax) xMax = xMin + 1
    const yTicks = niceTicks(yMin, yMax, 4)
    yMin = Math.min(yMin, yTicks[0])
    yMax = Math.max(yMax, yTicks[yTicks.length - 1])
    const xTicks = niceTicks(xMin, xMax, 5, { integer: true }).filter((t) => t >= xMin && t <= xMax)
    const yFormat = tickFormat(yTicks)
    this.container.dataset.yTicks = yTicks.map(yFormat).join(' ')
    this.container.dataset.xTicks = xTicks.join(' ')
    // Room on the left for the rotated y title and the widest tick label; below for x ticks and title.
    const titleRoom = this.yLabel ? 16 : 0
    const left = titleRoom + 8 + Math.max(...yTicks.map((t) => ctx.measureText(yFormat(t)).width))
    const plot = { x: left + 6, y: 8, w: width - left - 16, h: height - 44 }
    const sx = (x) => plot.x + ((x - xMin) / (xMax - xMin)) * plot.w
    const sy = (y) => plot.y + plot.h - ((y - yMin) / (yMax - yMin || 1)) * plot.h

    ctx.strokeStyle = '#e5e7eb'
    ctx.fillStyle = '#6b7280'
    ctx.lineWidth = 1
    ctx.textAlign = 'right'
    ctx.textBaseline = 'middle'
    for (const t of yTicks) {
      const y = Math.round(sy(t)) + 0.5
      ctx.beginPath()
      ctx.moveTo(plot.x, y)
      ctx.lineTo(plot.x + plot.w, y)
      ctx.stroke()
      ctx.fillText(yFormat(t), left, y)
    }
    ctx.textAlign = 'center'
    ctx.textBaseline = 'top'
    for (const t of xTicks) ctx.fillText(String(t), sx(t), plot.y + plot.h + 6)
    ctx.fillText('training step', plot.x + plot.w / 2, plot.y + plot.h + 22)
    if (this.yLabel) {
      ctx.save()
      ctx.translate(10, plot.y + plot.h / 2)
      ctx.rotate(-Math.PI / 2)
      ctx.fillText(this.yLabel, 0, -6)
      ctx.restore()
    }

    for (const [name, raw] of this.series) {
      // Smoothed: the raw curve stays visible but faint, so spikes are not hidden.
      if (this.smoothing) this.drawLine(ctx, raw, name, sx, sy, 0.25)
      this.drawLine(ctx, this.smoothing ? smooth(raw) : raw, name, sx, sy, 1)
    }

    if (this.hoverX !== null && this.hoverX >= plot.x) {
      const step = xMin + ((this.hoverX - plot.x) / plot.w) * (xMax - xMin)
      ctx.strokeStyle = '#9ca3af'
      ctx.beginPath()
      ctx.moveTo(Math.round(this.hoverX) + 0.5, plot.y)
      ctx.lineTo(Math.round(this.hoverX) + 0.5, plot.y + plot.h)
      ctx.stroke()
      const parts = []
      for (const [name, pts] of this.series) {
        const p = nearest(pts, step)
        if (p) parts.push(`${name} @${p[0]}: ${formatNumber(p[1])}`)
      }
      this.readout.textContent = parts.join('   ')
    }
  }

  drawLine(ctx, pts, name, sx, sy, alpha) {
    ctx.globalAlpha = alpha
    ctx.lineWidth = 1.5
    ctx.strokeStyle = this.color(name)
    ctx.beginPath()
    let started = false
    for (const [x, y] of pts) {
      if (!Number.isFinite(y)) {
        started = false
        continue
      }
      if (started) ctx.lineTo(sx(x), sy(y))
      else ctx.moveTo(sx(x), sy(y))
      started = true
    }
    ctx.stroke()
    if (pts.length === 1) {
      ctx.fillStyle = this.color(name)
      ctx.fillRect(sx(pts[0][0]) - 2, sy(pts[0][1]) - 2, 4, 4)
    }
    ctx.globalAlpha = 1
  }
}

/** The point whose step is closest to `step` (points sorted by step). */
function nearest(points, step) {
  if (points.length === 0) return undefined
  let lo = 0
  let hi = points.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (points[mid][0] < step) lo = mid + 1
    else hi = mid
  }
  const prev = points[lo - 1]
  return prev && step - prev[0] < points[lo][0] - step ? prev : points[lo]
}
