/**
 * A newcomer's first run in Debian's chromium, from an empty data folder on a first start (the ready
 * demo is registered and its model made in the background): enter the key, upload a dataset with a
 * bad line (the line number is shown) and then a good one (its preview is shown), start a run on the
 * demo model from the new-run form's defaults, watch reward accuracy and margins rise above their
 * first values, and read the samples. Screenshots go to artifacts/dashboard/.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEMO_RECOMMENDED_HYPERPARAMETERS } from '../../src/cli/demo-model.ts'
import { TASK_FAMILIES } from '../../src/eval/families.ts'
import { syntheticSftCorpus } from '../../src/eval/synthetic-corpus.ts'
import { dashboardSession, skipReason } from './browser.ts'

const session = dashboardSession({ demo: false, firstStart: true })
const sessionStarted = Date.now()

const PROMPTS = ['What is 2 + 3?', 'Name a colour.', 'Say hello politely.', 'What is 10 minus 4?']
const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`
const seconds = (since: number) => Math.round((Date.now() - since) / 1000)

/** The words of the demo's SFT corpus (a larger draw of it): what "reads as words" means here. */
const TAUGHT_WORDS = new Set(
  syntheticSftCorpus(Object.values(TASK_FAMILIES), { perFamily: 200, plainGoodRate: 0.5, seed: 9 }).flatMap(
    (r) => `${r.prompt} ${r.response}`.toLowerCase().match(/[a-z]+/g) ?? [],
  ),
)

type Series = { key: string; points: [number, number][] }

test('first run: key, dataset upload with errors and preview, a demo run from the form that learns, samples', {
  skip: skipReason,
  timeout: 900_000,
}, async (t) => {
  const { service, browser } = session
  const { page } = browser
  await page.goto(service.url)
  await page.getByTestId('api-key').fill(service.apiKey)
  await page.getByTestId('save-key').click()
  await page.getByText('No runs yet.').waitFor()

  // Datasets: a file whose third line has no prompt is refused, naming that line.
  await page.getByRole('link', { name: 'Datasets' }).click()
  await page.locator('[data-testid="datasets-table"] tr', { hasText: 'demo-queries' }).waitFor()
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

  // The new-run form starts from the ready demo: model, queries, principle set, recommended settings.
  assert.ok(service.server.demo, 'a first start sets up the demo')
  await service.server.demo.modelReady
  t.diagnostic(`demo model ready ${seconds(sessionStarted)} s after the service was started`)
  const models = await service.client.get<{ items: { id: string; name: string }[] }>('/v1/models')
  const demoModel = models.items.find((m) => m.name === 'demo')
  assert.ok(demoModel, 'the demo model is registered')
  await page.getByRole('link', { name: 'Runs' }).click()
  await page.getByTestId('new-run').locator('summary').click()
  const form = page.getByTestId('new-run-form')
  const datasetOption = form.locator('select[name=datasets] option', { hasText: 'first-queries' })
  await datasetOption.waitFor({ state: 'attached' })
  assert.match((await datasetOption.textContent()) ?? '', /first-queries · queries · 4 rows · /)
  const hyperparameters = form.locator('textarea[name=hyperparameters]')
  await page.waitForFunction(
    (id) => (document.querySelector('select[name=model]') as HTMLSelectElement | null)?.value === id,
    demoModel.id,
  )
  // The model's recommendation replaces the form's own defaults (4 settings) once the model is read.
  await page.waitForFunction((n) => {
    const text = (document.querySelector('textarea[name=hyperparameters]') as HTMLTextAreaElement).value
    try {
      return Object.keys(JSON.parse(text)).length === n
    } catch {
      return false
    }
  }, Object.keys(DEMO_RECOMMENDED_HYPERPARAMETERS).length)
  assert.deepEqual(JSON.parse(await hyperparameters.inputValue()), DEMO_RECOMMENDED_HYPERPARAMETERS)
  const selected = (name: string) =>
    form
      .locator(`select[name=${name}]`)
      .evaluate((el: HTMLSelectElement) => Array.from(el.selectedOptions, (o) => o.textContent ?? ''))
  assert.match((await selected('datasets')).join('|'), /^demo-queries · queries · 60 rows · /)
  assert.match((await selected('principle_set')).join('|'), /^demo \(v1\)$/)
  await form.locator('select[name=device]').selectOption('cpu')
  await browser.screenshot('22-new-run-form')
  const runStarted = Date.now()
  await page.getByTestId('start-run').click()

  await page.waitForURL(/#\/runs\/[0-9a-f-]{36}/)
  const runId = /#\/runs\/([0-9a-f-]{36})/.exec(page.url())![1]

  // The run ends (a failed one is reported with its error).
  const status = page.getByTestId('run-status')
  await page.waitForFunction(
    () =>
      ['succeeded', 'failed', 'cancelled'].includes(
        document.querySelector('[data-testid="run-status"]')?.textContent ?? '',
      ),
    null,
    { timeout: 600_000, polling: 500 },
  )
  const run = await service.client.get<{ status: string; error: unknown }>(`/v1/runs/${runId}`)
  assert.equal(run.status, 'succeeded', `the run ended ${run.status}: ${JSON.stringify(run.error)}`)
  assert.equal(await status.textContent(), 'succeeded')
  t.diagnostic(`the run took ${seconds(runStarted)} s from the click to its end`)

  // Learning: reward accuracy and margins end above their first values, and the chart shows them all.
  const { series } = await service.client.get<{ series: Series[] }>(
    `/v1/runs/${runId}/metrics?keys=rewards/accuracies,rewards/margins`,
  )
  const values = (key: string) => series.find((s) => s.key === key)?.points.map(([, v]) => v) ?? []
  const accuracy = values('rewards/accuracies')
  const margins = values('rewards/margins')
  t.diagnostic(`reward accuracy ${accuracy.join(' ')}; margins ${margins.map((m) => m.toFixed(3)).join(' ')}`)
  assert.ok(accuracy.length >= 2 && margins.length === accuracy.length, 'a value per step')
  assert.ok(accuracy.at(-1)! > accuracy[0], `reward accuracy rises: ${accuracy.join(' ')}`)
  assert.ok(margins.at(-1)! > margins[0], `margins rise: ${margins.join(' ')}`)
  const chart = page.getByTestId('chart-accuracy')
  await page.waitForFunction(
    (n) =>
      document.querySelector<HTMLElement>('[data-testid="chart-accuracy"]')?.dataset.points === String(n),
    accuracy.length,
  )
  assert.match((await chart.locator('.chart-note').textContent()) ?? '', /rising towards 1/)
  const xTicks = (await chart.getAttribute('data-x-ticks')) ?? ''
  assert.ok(
    xTicks.split(' ').every((x) => Number.isInteger(Number(x))),
    `whole steps on the x axis: ${xTicks}`,
  )
  await browser.screenshot('23-run-charts')

  // Samples: the answers in words (the demo model is no random-weight model, so no noise hint).
  await page.getByTestId('tab-samples').click()
  const sample = page.getByTestId('sample').first()
  await sample.waitFor()
  for (const label of ['y+ (chosen)', 'y− (rejected)', 'y0 (raw)']) await sample.getByText(label).waitFor()
  assert.equal(await page.getByTestId('noise-hint').isVisible(), false, 'no noise hint for the demo model')
  const answers = await page.locator('[data-testid="sample"] > .sample-grid pre').allTextContents()
  const words =
    answers
      .join(' ')
      .toLowerCase()
      .match(/[a-z]+/g) ?? []
  const known = words.filter((w) => TAUGHT_WORDS.has(w)).length
  assert.ok(
    known > 0.6 * words.length,
    `most words are words the demo model was taught:\n${answers.join('\n')}`,
  )
  await browser.screenshot('24-samples')

  assert.deepEqual(
    browser.errors.filter((e) => !e.includes(' 401 ') && !e.startsWith('http 422 POST')),
    [],
    'no page errors beyond the refused requests before the key and the refused upload',
  )
})
