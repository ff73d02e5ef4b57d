/**
 * The dashboard in Debian's chromium: the runs page shows the live workers, and a succeeded run's
 * details register its final model, which the new-run form then offers.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { demoRunBody } from '../../src/cli/demo-setup.ts'
import { until } from '../worker/until.ts'
import { dashboardSession, skipReason } from './browser.ts'

const session = dashboardSession()

test('workers on the runs page; register a succeeded run as a model', {
  skip: skipReason,
  timeout: 180_000,
}, async () => {
  const { service, resources, browser } = session
  const run = await service.client.post<{ id: string }>(
    '/v1/runs',
    demoRunBody(resources, { iterations: 1, queries_per_iteration: 4, max_new_tokens: 4 }),
  )
  const { page } = browser
  await page.goto(service.url)
  await page.getByTestId('api-key').fill(service.apiKey)
  await page.getByTestId('save-key').click()
  await page.getByTestId('workers').getByText('Workers (1 live)').waitFor()
  assert.match((await page.getByTestId('workers').textContent()) ?? '', /cpu · [01]\/1 runs/)
  await browser.screenshot('10-workers')

  await until(
    async () => {
      const { status } = await service.client.get<{ status: string }>(`/v1/runs/${run.id}`)
      if (status === 'failed') throw new Error('the run failed')
      return status === 'succeeded' ? true : undefined
    },
    'the run to succeed',
    120_000,
  )
  await page.goto(`${service.url}/#/runs/${run.id}?tab=details`)
  await page.getByTestId('register-model').waitFor()
  await page.getByTestId('model-name').fill('demo-after-sso')
  // The stream's backfill updates the run after the form appeared; the typed name must survive that.
  await page.getByTestId('stream-state').getByText('ended').waitFor()
  await page.waitForLoadState('networkidle')
  await page.getByTestId('register-model-submit').click()
  const said = await page
    .waitForFunction(() => document.getElementById('notice')?.textContent?.trim(), null, { timeout: 20_000 })
    .catch(async (e) => {
      await browser.screenshot('11-register-no-answer')
      throw e
    })
  assert.match(String(await said.jsonValue()), /^Model 'demo-after-sso' registered/)
  await browser.screenshot('11-model-registered')

  const models = await service.client.get<{ items: { name: string; path: string }[] }>('/v1/models')
  const registered = models.items.find((m) => m.name === 'demo-after-sso')
  assert.ok(registered?.path.endsWith(`${run.id}/final`))

  // The new-run form lists it among the models.
  await page.goto(`${service.url}/#/`)
  await page.getByTestId('new-run').locator('summary').click()
  const options = await page.getByTestId('new-run-form').locator('select[name=model] option').allInnerTexts()
  assert.ok(options.includes('demo-after-sso'), `models offered: ${options.join(', ')}`)
  assert.deepEqual(
    browser.errors.filter((e) => !e.includes(' 401 ')),
    [],
    'no page errors beyond the refused requests before the key was entered',
  )
})
