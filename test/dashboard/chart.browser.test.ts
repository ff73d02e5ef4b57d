/**
 * The dashboard's canvas chart in a real browser: a 100,000-point history is reduced to a bounded
 * number of drawn points (min/max per bucket, so spikes survive), and live points append in order.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { dashboardPlugin } from '../../src/api/dashboard/plugin.ts'
import { type Browser, openBrowser, skipReason } from './browser.ts'

let app: FastifyInstance
let browser: Browser
let origin: string

before(async () => {
  if (skipReason) return
  app = Fastify()
  await app.register(dashboardPlugin)
  origin = await app.listen({ port: 0, host: '127.0.0.1' })
  browser = await openBrowser()
  // A blank page on the same origin, so the chart module can be imported without the app's routing.
  await browser.page.goto(`${origin}/assets/style.css`)
})

after(async () => {
  await browser?.close()
  await app?.close()
})

test('100,000 points are decimated to the chart budget and keep the extremes', {
  skip: skipReason,
}, async () => {
  const result = await browser.page.evaluate(async () => {
    const { LineChart } = await import('/assets/chart.js' as string)
    document.body.innerHTML = '<div id="c" style="width:800px"></div>'
    const chart = new LineChart(document.getElementById('c'), { title: 'loss', maxPoints: 2000 })
    const points: [number, number][] = []
    for (let s = 0; s < 100_000; s++) points.push([s, Math.sin(s / 1000) + (s === 54_321 ? 10 : 0)])
    chart.setSeries('loss', points)
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))
    const drawn = chart.series.get('loss') as [number, number][]
    const canvas = document.querySelector('#c canvas') as HTMLCanvasElement
    return {
      count: chart.pointCount(),
      max: Math.max(...drawn.map((p) => p[1])),
      first: drawn[0][0],
      sorted: drawn.every((p, i) => i === 0 || drawn[i - 1][0] <= p[0]),
      canvasWidth: canvas.width,
      attr: (document.getElementById('c') as HTMLElement).dataset.points,
    }
  })
  assert.ok(result.count <= 2000, `drawn points ${result.count}`)
  assert.ok(result.count >= 1000, `drawn points ${result.count}`)
  assert.equal(result.max, 10 + Math.sin(54.321), 'the spike at step 54,321 survives decimation')
  assert.equal(result.first, 0)
  assert.ok(result.sorted)
  assert.ok(result.canvasWidth > 0)
  assert.equal(result.attr, String(result.count))
})

test('live points append in step order and a repeated step replaces its value', {
  skip: skipReason,
}, async () => {
  const result = await browser.page.evaluate(async () => {
    const { LineChart } = await import('/assets/chart.js' as string)
    document.body.innerHTML = '<div id="d" style="width:600px"></div>'
    const chart = new LineChart(document.getElementById('d'), { title: 'loss' })
    chart.addPoint('loss', 1, 0.9)
    chart.addPoint('loss', 2, 0.8)
    chart.addPoint('loss', 2, 0.7)
    chart.addPoint('loss', 1, 5)
    return chart.series.get('loss')
  })
  assert.deepEqual(result, [
    [1, 0.9],
    [2, 0.7],
  ])
  assert.deepEqual(browser.errors, [])
})

test('axes: integer steps, distinct y ticks in one format, smoothing keeps the raw points', {
  skip: skipReason,
}, async () => {
  const result = await browser.page.evaluate(async () => {
    const { LineChart } = await import('/assets/chart.js' as string)
    document.body.innerHTML = '<div id="e" style="width:600px"></div>'
    const box = document.getElementById('e') as HTMLElement
    const chart = new LineChart(box, { title: 'accuracy', yLabel: 'fraction', note: 'rising is good' })
    // Three steps and values within 0.0015 of each other: the "0.998 three times" case.
    chart.setSeries('a', [
      [1, 0.998],
      [2, 0.9985],
      [3, 0.9995],
    ])
    chart.setSeries('b', [
      [1, 0.0009],
      [3, 0.0011],
    ])
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))
    const first = { y: box.dataset.yTicks, x: box.dataset.xTicks }
    ;(box.querySelector('[data-testid="smoothing"]') as HTMLInputElement).click()
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))
    return {
      ...first,
      note: box.querySelector('.chart-note')?.textContent,
      smoothing: box.dataset.smoothing,
      raw: chart.series.get('a'),
    }
  })
  const xTicks = (result.x ?? '').split(' ').map(Number)
  assert.ok(xTicks.length >= 2, `x ticks ${result.x}`)
  assert.ok(
    xTicks.every((t) => Number.isInteger(t)),
    `x ticks are whole steps: ${result.x}`,
  )
  const yTicks = (result.y ?? '').split(' ')
  assert.equal(new Set(yTicks).size, yTicks.length, `y ticks repeat: ${result.y}`)
  const decimals = new Set(yTicks.map((t) => (t.split('.')[1] ?? '').length))
  assert.equal(decimals.size, 1, `one number format: ${result.y}`)
  assert.ok(
    yTicks.every((t) => !t.includes('e')),
    `no exponent beside plain numbers: ${result.y}`,
  )
  assert.equal(result.note, 'rising is good')
  assert.equal(result.smoothing, 'true')
  assert.deepEqual(result.raw, [
    [1, 0.998],
    [2, 0.9985],
    [3, 0.9995],
  ])
  assert.deepEqual(browser.errors, [])
})
