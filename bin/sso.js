#!/usr/bin/env node
// The `sso` command: runs src/cli/main.ts through tsx (the package ships TypeScript sources).
// A child Node process with tsx's loader keeps signals and the exit code intact.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

// Resolved from this package (ESM conditions), so the launcher works from any working directory.
const tsx = import.meta.resolve('tsx')
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))

const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' })
// Ctrl-C reaches the whole process group, the child included: this process only waits for it (a
// forwarded copy would count as a second Ctrl-C). Signals sent to this process alone are passed on.
process.on('SIGINT', () => {})
for (const signal of ['SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal))
}
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal)
  else process.exit(code ?? 1)
})
