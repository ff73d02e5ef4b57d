/**
 * The human-readable lines `sso serve` prints once it listens (on stderr, so stdout keeps JSON logs
 * when it is not a terminal): where to go, where the data is, and the admin key when it was just made.
 */
import type { Config } from '../config.ts'

export interface StartFacts {
  url: string
  config: Pick<Config, 'dataDir' | 'modelsRoot' | 'DATABASE_URL'>
  /** Devices of the in-process worker; undefined without one. */
  workerDevices?: string[]
  /** The admin key created by this start (a first start on an empty database). */
  adminKey?: string
  /** The ready demo: registered, or its model still being made; undefined when DEMO_RESOURCES is off. */
  demo?: 'ready' | 'making'
}

const DEMO_LINES = {
  ready: "model 'demo', dataset 'demo-queries', principle set 'demo' (the new-run form starts from them)",
  making:
    "dataset 'demo-queries' and principle set 'demo' ready; model 'demo' is being made (about a minute, a short SFT) and appears in the model list when ready",
}

function databaseLine(config: StartFacts['config']): string {
  if (!config.DATABASE_URL) return `embedded PostgreSQL in ${config.dataDir}/postgres`
  const url = new URL(config.DATABASE_URL)
  if (url.password) url.password = '***'
  return url.toString()
}

export function formatStartBanner(facts: StartFacts): string {
  const lines = [
    '',
    `  sso-trainer is running: ${facts.url}  (dashboard at /, API docs at /docs)`,
    `  data:     ${facts.config.dataDir}`,
    `  database: ${databaseLine(facts.config)}`,
    `  models:   ${facts.config.modelsRoot}  (MODELS_ROOT: folders for 'sso models register --path')`,
    `  worker:   ${facts.workerDevices ? `in this process, devices ${facts.workerDevices.join(', ')}` : 'none in this process (start one with npm run worker)'}`,
  ]
  if (facts.demo) lines.push(`  demo:     ${DEMO_LINES[facts.demo]}`)
  if (facts.adminKey) {
    const rule = `  ${'='.repeat(78)}`
    lines.push(
      '',
      rule,
      '  ADMIN API KEY (shown once; paste it into the dashboard, or export SSO_API_KEY=...):',
      '',
      `    ${facts.adminKey}`,
      '',
      '  Lost it? Mint a new one against the database: npm run admin-key  (or: sso admin-key)',
      rule,
    )
  }
  return `${lines.join('\n')}\n\n`
}
