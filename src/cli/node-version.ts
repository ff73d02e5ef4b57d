/**
 * The Node.js version check every entry point runs first (`npm start`, `npm run worker`, `sso`): on an
 * older Node the service starts but its training threads cannot load TypeScript, so the first run
 * failed with "Unknown file extension .ts". Better to stop at once and say how to get a newer Node.
 */
export const MIN_NODE = '22.12.0'

function isOlder(version: string, than: string): boolean {
  const a = version.replace(/^v/, '').split('.').map(Number)
  const b = than.split('.').map(Number)
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) < b[i]
  return false
}

/** What to tell the user when `version` is too old; undefined when it is recent enough. */
export function nodeVersionProblem(version: string, execPath: string): string | undefined {
  if (!isOlder(version, MIN_NODE)) return undefined
  return [
    `sso-trainer needs Node.js ${MIN_NODE} or newer (24 LTS recommended); this is Node.js ${version.replace(/^v/, '')} (${execPath}).`,
    'Get Node.js 24, then run the command again:',
    '  with nvm (https://github.com/nvm-sh/nvm):  nvm install 24 && nvm use 24',
    '  from the npm registry:                   npm install -g node@24   (then open a new shell)',
    '  or https://nodejs.org/en/download',
  ].join('\n')
}
