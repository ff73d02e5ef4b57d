/** Imported first by main.ts: stops an old Node.js before any other module loads (see node-version.ts). */
import { nodeVersionProblem } from './node-version.ts'

const problem = nodeVersionProblem(process.versions.node, process.execPath)
if (problem) {
  process.stderr.write(`${problem}\n`)
  process.exit(1)
}
