#!/usr/bin/env node
// The `sso` command: runs src/cli/main.ts through tsx (the package ships TypeScript sources).
// A child Node process with tsx's loader keeps signals and the exit code intact.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const tsx = require.resolve('tsx')
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))

const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal))
}
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal)
  else process.exit(code ?? 1)
})
