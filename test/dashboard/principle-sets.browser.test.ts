/**
 * The principle-set editor in chromium against the real service: create a set, edit it, and see the
 * stored result through the API; a set missing a text is refused in the page before any request.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type LiveService, startLiveService } from '../cli/live-service.ts'
import { type Browser, openBrowser, skipReason } from './browser.ts'

let service: LiveService
let browser: Browser

before(async () => {
  if (skipReason) return
  service = await startLiveService()
  browser = await openBrowser()
  // The key goes in before the app's first page, which would otherwise call the API without one.
  await browser.page.goto(`${service.url}/assets/style.css`)
  await browser.page.evaluate((key) => localStorage.setItem('sso.apiKey', key), service.apiKey)
})

after(async () => {
  await browser?.close()
  await service?.stop()
})

interface PrincipleSet {
  id: string
  name: string
  version: number
  principles: { feature: string; good: string; bad: string }[]
}

test('create and edit a principle set', { skip: skipReason, timeout: 60_000 }, async () => {
  const { page } = browser
  await page.goto(`${service.url}/#/principle-sets`)
  await page.getByText('No principle sets yet.').waitFor()
  await page.getByTestId('new-principle-set').click()

  await page.getByTestId('principle-set-name').fill('house style')
  const rows = page.getByTestId('principle')
  await rows.nth(0).locator('[name=feature]').fill('concise')
  await rows.nth(0).locator('[name=good]').fill('Answer in as few words as the question allows.')
  await rows.nth(0).locator('[name=bad]').fill('Pad the answer with filler.')
  await page.getByTestId('add-principle').click()
  await rows.nth(1).locator('[name=feature]').fill('polite')
  await rows.nth(1).locator('[name=good]').fill('Thank the user and stay friendly.')

  // The second principle has no bad text: refused in the page.
  await page.getByTestId('save-principle-set').click()
  await page.getByText("Principle 'polite' needs a feature, a good and a bad text.").waitFor()
  await rows.nth(1).locator('[name=bad]').fill('Be curt and dismissive.')
  await page.getByTestId('save-principle-set').click()
  await page.getByText('Saved.').waitFor()
  await page.waitForURL(/#\/principle-sets\/[0-9a-f-]{36}$/)
  const id = /principle-sets\/([0-9a-f-]{36})$/.exec(page.url())![1]
  await browser.screenshot('10-principle-set-editor')

  const created = await service.client.get<PrincipleSet>(`/v1/principle-sets/${id}`)
  assert.equal(created.name, 'house style')
  assert.deepEqual(
    created.principles.map((p) => p.feature),
    ['concise', 'polite'],
  )

  // Edit: remove the first principle and save; the service keeps the change.
  await page.reload()
  await rows.first().waitFor()
  await rows.nth(0).getByTitle('remove').click()
  await page.getByTestId('save-principle-set').click()
  await page.getByText('Saved.').waitFor()
  const edited = await service.client.get<PrincipleSet>(`/v1/principle-sets/${id}`)
  assert.deepEqual(
    edited.principles.map((p) => p.feature),
    ['polite'],
  )

  await page.goto(`${service.url}/#/principle-sets`)
  await page.getByRole('link', { name: 'house style' }).waitFor()
  assert.deepEqual(browser.errors, [])
})
