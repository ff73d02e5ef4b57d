/**
 * Child process of the output-reclaim test: runs a session whose one output (256 MiB) is written
 * into a caller's buffer, three times, and prints how far the peak resident set rose above the
 * buffers themselves. Started with the training processes' malloc settings, as a trainer is.
 */
import { Graph } from '../../src/engine/graph.ts'
import { mul } from '../../src/engine/ops/index.ts'
import { createGraphSession, hostTensor } from '../../src/engine/runtime/index.ts'

const n = 64 * 2 ** 20
const g = new Graph({ name: 'double' })
g.output(mul(g, g.input('x', 'float32', [n]), g.constant(2, 'float32')), 'y')
const session = await createGraphSession(g.serialize(), { provider: 'cpu' })
const x = hostTensor('float32', [n], new Float32Array(n).fill(1))
const y = hostTensor('float32', [n], new Float32Array(n).fill(0))
/** Peak resident bytes so far (getrusage's maxrss, Linux's VmHWM). */
const peak = () => process.resourceUsage().maxRSS * 1024
const before = peak()
for (let i = 0; i < 3; i++) await session.run({ x }, undefined, { y })
if (y.data[n - 1] !== 2) throw new Error(`the output was not written: ${y.data[n - 1]}`)
await session.release()
process.stdout.write(`${JSON.stringify({ outputBytes: n * 4, rise: peak() - before })}\n`)
