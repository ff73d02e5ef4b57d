/** Options shared by every command that talks to the service, and the client they configure. */
import { ApiClient } from './api-client.ts'
import { type CommandContext, type OptionSpecs, UsageError } from './command.ts'
import { type CliEnvironment, DEFAULT_URL, readCliEnvironment } from './environment.ts'
import { formatTable, printJson } from './output.ts'

export const API_OPTIONS: OptionSpecs = {
  url: { type: 'string', arg: 'url', description: `service URL (env SSO_URL, else ${DEFAULT_URL})` },
  'api-key': { type: 'string', arg: 'key', description: 'API key (env SSO_API_KEY)' },
  project: {
    type: 'string',
    arg: 'project',
    description: 'project to act in, for an admin key spanning every project (env SSO_PROJECT)',
  },
  json: { type: 'boolean', description: 'print machine-readable JSON' },
}

export function clientFor(ctx: CommandContext, env: CliEnvironment = readCliEnvironment()): ApiClient {
  const url = typeof ctx.values.url === 'string' ? ctx.values.url : env.url
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    const from = typeof ctx.values.url === 'string' ? '--url' : 'SSO_URL'
    throw new UsageError(`${from} must be an http:// or https:// URL, got '${url}'`)
  }
  const key = typeof ctx.values['api-key'] === 'string' ? ctx.values['api-key'] : env.apiKey
  const project = typeof ctx.values.project === 'string' ? ctx.values.project : env.project
  return new ApiClient(url, key, project)
}

export function wantsJson(ctx: CommandContext): boolean {
  return ctx.values.json === true
}

/** A listing: the service's answer as JSON with --json, else a table of `rows` (or `empty`, if given, when none). */
export function printListing(
  ctx: CommandContext,
  answer: unknown,
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
  empty?: string,
): void {
  if (wantsJson(ctx)) printJson(answer)
  else process.stdout.write(rows.length === 0 && empty ? `${empty}\n` : formatTable(rows, columns))
}
