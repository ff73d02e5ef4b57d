/**
 * Debian's chromium driven by playwright-core for the dashboard tests. Fresh profile per launch, no
 * network services of its own. When /usr/bin/chromium is missing, `skipReason` says so and the tests skip
 * (under CI=true they fail instead).
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { createDemoResources, type DemoResources } from '../../src/cli/demo-setup.ts'
import { type LiveService, startLiveService } from '../cli/live-service.ts'
import { skipUnlessCi } from '../helpers/ci.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const ARTIFACTS = fileURLToPath(new URL('../../artifacts/dashboard/', import.meta.url))

export const skipReason = skipUnlessCi(
  existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} is not installed (run .ci/install-browser to install Debian's chromium)`,
)

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface Browser {
  context: BrowserContext
  page: Page
  /** Browser console errors and uncaught page errors, for assertions. */
  errors: string[]
  screenshot(name: string): Promise<string>
  close(): Promise<void>
}

export async function openBrowser(): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'sso-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`))
  page.on('console', (m) => {
    // A failed request is reported with its URL below; the console's copy has none.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      errors.push(`console: ${m.text()}`)
  })
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`http ${r.status()} ${r.request().method()} ${r.url()}`)
  })
  return {
    context,
    page,
    errors,
    async screenshot(name) {
      await mkdir(ARTIFACTS, { recursive: true })
      const file = path.join(ARTIFACTS, `${name}.png`)
      await page.screenshot({ path: file, fullPage: true })
      return file
    },
    async close() {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}

export interface DashboardSession {
  service: LiveService
  resources: DemoResources
  browser: Browser
}

/**
 * The real service with the demo's principle set and dataset (unless `demo` is false), and a browser,
 * for one test file: opened in `before` (unless the browser is missing), closed in `after`. The fields
 * are set once `before` has run. `firstStart`: the service registers its ready demo (model `demo`
 * made in the background, `demo-queries`, principle set `demo`) as a newcomer's first start does.
 */
export function dashboardSession({ demo = true, firstStart = false } = {}): DashboardSession {
  const session = {} as DashboardSession
  before(async () => {
    if (skipReason) return
    session.service = await startLiveService({ demo: firstStart })
    if (demo) session.resources = await createDemoResources(session.service.client)
    session.browser = await openBrowser()
  })
  after(async () => {
    await session.browser?.close()
    await session.service?.stop()
  })
  return session
}
