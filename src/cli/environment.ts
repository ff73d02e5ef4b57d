import { existsSync } from 'node:fs'

/**
 * What the CLI reads from its environment besides src/config.ts: where the service is and which key
 * to send. Read once in main.ts; command options (--url, --api-key, --project) take precedence.
 */
export interface CliEnvironment {
  url: string
  apiKey?: string
  /** Project an admin key spanning every project acts in (SSO_PROJECT). */
  project?: string
  /** Colours and cursor movement only on a terminal, and never with NO_COLOR set. */
  color: boolean
}

export const DEFAULT_URL = 'http://127.0.0.1:3000'

export function readCliEnvironment(
  env: Record<string, string | undefined> = process.env,
  isTTY = Boolean(process.stdout.isTTY),
): CliEnvironment {
  return {
    url: env.SSO_URL || DEFAULT_URL,
    apiKey: env.SSO_API_KEY || undefined,
    project: env.SSO_PROJECT || undefined,
    color: isTTY && !env.NO_COLOR,
  }
}

/**
 * Loads `.env` from the working directory into process.env (Node's own parser) before any command
 * reads its configuration; variables already set in the environment win over the file.
 */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file)
}
