/**
 * The dashboard in Debian's chromium against the real service: enter a key, start a tiny run from the
 * form, watch the loss chart gain points live, open the samples of an iteration, cancel the run.
 * Screenshots go to artifacts/dashboard/.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEMO_HYPERPARAMETERS } from '../../src/cli/demo-setup.ts'
import { type Browser, dashboardSession, skipReason } from './browser.ts'

const session = dashboardSession()

const chartPoints = (page: Browser['page'], id: string) =>
  page
    .locator(`[data-testid="chart-${id}"]`)
    .evaluate((el) => Number((el as HTMLElement).dataset.points ?? 0))

test('start a run, see live curves and samples, cancel it', {
  skip: skipReason,
  timeout: 240_000,
}, async () => {
  const { service, resources, browser } = session
  const { page } = browser
  await page.goto(service.url)

  // Without a key the runs list is refused and the page says what to do.
  await page.getByText('This needs an API key').waitFor()
  await page.getByTestId('api-key').fill(service.apiKey)
  await page.getByTestId('save-key').click()
  await page.getByText('No runs yet.').waitFor()
  assert.equal(await page.evaluate(() => localStorage.getItem('sso.apiKey')), service.apiKey)

  // The new-run form: the demo principle set and dataset, small hyperparameters.
  await page.getByTestId('new-run').locator('summary').click()
  const form = page.getByTestId('new-run-form')
  await form.locator('select[name=principle_set]').selectOption(resources.principleSetId)
  await form.locator('select[name=datasets]').selectOption([resources.datasetId])
  await form.locator('select[name=device]').selectOption('cpu')
  // Enough iterations that the run is still training when the test cancels it.
  await form
    .locator('textarea[name=hyperparameters]')
    .fill(JSON.stringify({ ...DEMO_HYPERPARAMETERS, iterations: 50, generation_batch_size: 4 }))
  await browser.screenshot('01-new-run-form')
  await page.getByTestId('start-run').click()

  await page.waitForURL(/#\/runs\/[0-9a-f-]{36}/)
  const runId = /#\/runs\/([0-9a-f-]{36})/.exec(page.url())![1]
  await page.getByTestId('stream-state').getByText('live').waitFor()

  // The loss chart gains points while the run trains (a failed run ends the wait at once).
  await page.waitForFunction(
    () =>
      Number(document.querySelector<HTMLElement>('[data-testid="chart-loss"]')?.dataset.points ?? 0) > 0 ||
      document.querySelector('[data-testid="run-status"]')?.textContent === 'failed',
    null,
    { timeout: 180_000 },
  )
  const current = await service.client.get<{ status: string; error: unknown }>(`/v1/runs/${runId}`)
  assert.notEqual(current.status, 'failed', `the run failed: ${JSON.stringify(current.error)}`)
  const first = await chartPoints(page, 'loss')
  await page.waitForFunction(
    (n) => Number(document.querySelector<HTMLElement>('[data-testid="chart-loss"]')?.dataset.points ?? 0) > n,
    first,
    { timeout: 120_000 },
  )
  await browser.screenshot('02-run-live-charts')

  // Samples of the first iteration: query, principles, y+, y-, y0.
  await page.getByTestId('tab-samples').click()
  const sample = page.getByTestId('sample').first()
  await sample.waitFor({ timeout: 120_000 })
  for (const label of ['y+ (chosen)', 'y− (rejected)', 'y0 (raw)']) await sample.getByText(label).waitFor()
  await browser.screenshot('03-samples')

  await page.getByTestId('tab-events').click()
  await page.getByTestId('events').locator('li').first().waitFor()

  // Cancel: the status follows over the stream.
  await page.getByTestId('tab-charts').click()
  const before = await service.client.get<{ status: string; error: unknown }>(`/v1/runs/${runId}`)
  assert.equal(before.status, 'running', `run before cancel: ${JSON.stringify(before)}`)
  await page.getByTestId('cancel').click()
  await page.getByTestId('run-status').getByText('cancelled', { exact: true }).waitFor({ timeout: 120_000 })
  assert.equal(await page.getByTestId('cancel').isDisabled(), true)
  await browser.screenshot('04-cancelled')

  const run = await service.client.get<{ status: string }>(`/v1/runs/${runId}`)
  assert.equal(run.status, 'cancelled')

  // Back on the list, the run shows its final status.
  await page.goto(`${service.url}/#/`)
  await page.locator(`tr[data-run-id="${runId}"]`).getByText('cancelled').waitFor()
  await browser.screenshot('05-runs-list')
  assert.deepEqual(
    browser.errors.filter((e) => !e.includes(' 401 ')),
    [],
    'no page errors beyond the refused request before the key was entered',
  )
})
