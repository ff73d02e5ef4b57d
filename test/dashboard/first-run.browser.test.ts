/**
 * A newcomer's first run in Debian's chromium, from an empty data folder: enter the key, upload a
 * dataset with a bad line (the line number is shown) and then a good one (its preview is shown), start
 * a run from the new-run form's defaults, see reward accuracy get a value, and read the samples.
 * Screenshots go to artifacts/dashboard/.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dashboardSession, skipReason } from './browser.ts'

const session = dashboardSession({ demo: false })

const PROMPTS = ['What is 2 + 3?', 'Name a colour.', 'Say hello politely.', 'What is 10 minus 4?']
const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`

test('first run: key, dataset upload with errors and preview, run from the form, charts, samples', {
  skip: skipReason,
  timeout: 600_000,
}, async () => {
  const { service, browser } = session
  const { page } = browser
  await page.goto(service.url)
  await page.getByTestId('api-key').fill(service.apiKey)
  await page.getByTestId('save-key').click()
  await page.getByText('No runs yet.').waitFor()

  // Datasets: a file whose third line has no prompt is refused, naming that line.
  await page.getByRole('link', { name: 'Datasets' }).click()
  await page.getByText('No datasets yet.').waitFor()
  await page.getByTestId('format-help').locator('summary').click()
  await page.getByTestId('format-help').getByText('"prompt":"What is 17 + 25?"').waitFor()
  await page.getByTestId('dataset-name').fill('first-queries')
  await page.getByTestId('dataset-format').selectOption('queries')
  const bad = jsonl([{ prompt: PROMPTS[0] }, { prompt: PROMPTS[1] }, { question: 'no prompt here' }])
  await page.getByTestId('dataset-file').setInputFiles({
    name: 'bad.jsonl',
    mimeType: 'application/x-ndjson',
    buffer: Buffer.from(bad),
  })
  const errors = page.getByTestId('upload-errors')
  await errors.waitFor()
  assert.match((await errors.textContent()) ?? '', /line 3/)
  await browser.screenshot('20-dataset-bad-line')

  await page.getByTestId('dataset-file').setInputFiles({
    name: 'good.jsonl',
    mimeType: 'application/x-ndjson',
    buffer: Buffer.from(jsonl(PROMPTS.map((prompt) => ({ prompt })))),
  })
  const preview = page.getByTestId('dataset-preview')
  await preview.waitFor()
  assert.match((await preview.textContent()) ?? '', /first-queries \(queries, 4 rows\)/)
  assert.equal(await preview.locator('li').count(), PROMPTS.length)
  await page.locator('[data-testid="datasets-table"] tr', { hasText: 'first-queries' }).waitFor()
  await browser.screenshot('21-dataset-preview')

  // The new-run form: the demo model when the service registered one, else the built-in tiny model.
  await page.getByRole('link', { name: 'Runs' }).click()
  await page.getByTestId('new-run').locator('summary').click()
  const form = page.getByTestId('new-run-form')
  const datasetOption = form.locator('select[name=datasets] option', { hasText: 'first-queries' })
  await datasetOption.waitFor({ state: 'attached' })
  assert.match((await datasetOption.textContent()) ?? '', /first-queries · queries · 4 rows · /)
  const models = await service.client.get<{ items: { id: string; name: string; kind: string }[] }>(
    '/v1/models',
  )
  const expected =
    models.items.find((m) => m.name === 'demo') ?? models.items.find((m) => m.kind === 'builtin_tiny')
  assert.ok(expected, 'a model to train')
  const model = form.locator('select[name=model]')
  await page.waitForFunction(
    (id) => (document.querySelector('select[name=model]') as HTMLSelectElement | null)?.value === id,
    expected.id,
    { timeout: 60_000 },
  )
  if (!models.items.some((m) => m.name === 'demo-queries'))
    await form
      .locator('select[name=datasets]')
      .selectOption({ label: (await datasetOption.textContent()) ?? '' })
  await form.locator('select[name=device]').selectOption('cpu')
  assert.equal(await model.inputValue(), expected.id)
  await browser.screenshot('22-new-run-form')
  await page.getByTestId('start-run').click()

  await page.waitForURL(/#\/runs\/[0-9a-f-]{36}/)
  const runId = /#\/runs\/([0-9a-f-]{36})/.exec(page.url())![1]

  // Reward accuracy gets its first value (a failed run ends the wait at once and is reported).
  await page.waitForFunction(
    () =>
      Number(document.querySelector<HTMLElement>('[data-testid="chart-accuracy"]')?.dataset.points ?? 0) >
        0 || document.querySelector('[data-testid="run-status"]')?.textContent === 'failed',
    null,
    { timeout: 480_000, polling: 500 },
  )
  const run = await service.client.get<{ status: string; error: unknown }>(`/v1/runs/${runId}`)
  assert.notEqual(run.status, 'failed', `the run failed: ${JSON.stringify(run.error)}`)
  const accuracy = page.getByTestId('chart-accuracy')
  assert.match((await accuracy.locator('.chart-note').textContent()) ?? '', /rising towards 1/)
  const xTicks = (await accuracy.getAttribute('data-x-ticks')) ?? ''
  assert.ok(
    xTicks.split(' ').every((t) => Number.isInteger(Number(t))),
    `whole steps on the x axis: ${xTicks}`,
  )
  await browser.screenshot('23-run-charts')

  // Samples: the answers, and for the random tiny model a hint that they are noise.
  await page.getByTestId('tab-samples').click()
  const sample = page.getByTestId('sample').first()
  await sample.waitFor({ timeout: 300_000 })
  for (const label of ['y+ (chosen)', 'y− (rejected)', 'y0 (raw)']) await sample.getByText(label).waitFor()
  const hint = page.getByTestId('noise-hint')
  assert.equal(await hint.isVisible(), expected.kind === 'builtin_tiny', 'noise hint only for random weights')
  await browser.screenshot('24-samples')

  assert.deepEqual(
    browser.errors.filter((e) => !e.includes(' 401 ') && !e.startsWith('http 422 POST')),
    [],
    'no page errors beyond the refused requests before the key and the refused upload',
  )
})
