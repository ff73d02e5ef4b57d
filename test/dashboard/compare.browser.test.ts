/**
 * Comparing runs in the dashboard: two runs ticked on the runs page open one chart with a series per
 * run, the metric picker lists the keys either run recorded, and picking another key redraws the
 * chart from that key's points and keeps it in the URL.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { until } from '../worker/until.ts'
import { dashboardSession, skipReason } from './browser.ts'

const session = dashboardSession()
/** A key only this test writes, so the chart's point count is known exactly. */
const KEY = 'eval/compare_check'
const POINTS = 5

test('two runs compared on one chart, metric by metric', { skip: skipReason, timeout: 180_000 }, async () => {
  const { service, resources, browser } = session
  const { page } = browser
  const ids: string[] = []
  for (const seed of [1, 2]) {
    const run = await service.client.post<{ id: string }>('/v1/runs', {
      method: 'sso',
      model_id: resources.modelId,
      dataset_ids: [resources.datasetId],
      principle_set_id: resources.principleSetId,
      seed,
      hyperparameters: { iterations: 1, max_new_tokens: 4 },
    })
    await service.client.post(`/v1/runs/${run.id}/cancel`)
    ids.push(run.id)
  }
  for (const id of ids)
    await until(
      async () =>
        (await service.client.get<{ status: string }>(`/v1/runs/${id}`)).status === 'cancelled' || undefined,
      `run ${id} to be cancelled`,
    )
  await service.server.app.repos.metrics.createMany(
    ids.flatMap((runId, r) =>
      Array.from({ length: POINTS }, (_, s) => ({
        runId,
        key: KEY,
        step: s + 1,
        value: r + s / 10,
        iteration: null,
      })),
    ),
  )

  await page.goto(service.url)
  await page.getByTestId('api-key').fill(service.apiKey)
  await page.getByTestId('save-key').click()
  for (const id of ids) await page.locator(`tr[data-run-id="${id}"] input[type=checkbox]`).check()
  await page.getByTestId('compare').click()
  await page.waitForURL(/#\/compare\?ids=/)
  assert.deepEqual(
    new URL(page.url()).hash
      .match(/ids=([^&]+)/)![1]
      .split(',')
      .sort(),
    [...ids].sort(),
  )

  const picker = page.getByTestId('compare-key')
  await picker.locator(`option[value="${KEY}"]`).waitFor({ state: 'attached' })
  await picker.selectOption(KEY)
  await page.waitForFunction(
    (n) => document.querySelector<HTMLElement>('[data-testid="compare-chart"]')?.dataset.points === String(n),
    2 * POINTS,
    { timeout: 30_000 },
  )
  assert.match(page.url(), new RegExp(`key=${encodeURIComponent(KEY)}`))
  await browser.screenshot('06-compare')
  assert.deepEqual(
    browser.errors.filter((e) => !e.includes(' 401 ')),
    [],
    'no page errors beyond the refused request before the key was entered',
  )
})
