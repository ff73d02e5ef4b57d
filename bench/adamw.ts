/**
 * Host AdamW benchmark: ns per param of one optimizer step (update, gradient norm, gradient copy-in)
 * over N float32 params in tensors of at most 16M, each size in its own process (prints peak RSS too).
 * Usage: node --import tsx bench/adamw.ts [--params 16e6,300e6] [--state float32|bfloat16] [--runs 5]
 *   [--shard-floats N] (smaller shards than one 4 GiB memory per array, to time many of them)
 */
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { HostAdamW, hostTensor } from '../src/engine/index.ts'

const { values: args } = parseArgs({
  options: {
    params: { type: 'string', default: '16e6,300e6' },
    state: { type: 'string', default: 'float32' },
    runs: { type: 'string', default: '5' },
    'shard-floats': { type: 'string', default: String(2 ** 30) },
    child: { type: 'string' },
  },
})

const TENSOR = 1 << 24

/** Fastest of `runs` calls after one warm-up, in ms (the machine is shared: slower runs are contention). */
function best(fn: () => unknown, runs: number): number {
  fn()
  let ms = Number.POSITIVE_INFINITY
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now()
    fn()
    ms = Math.min(ms, performance.now() - t0)
  }
  return ms
}

function measure(n: number, stateDtype: string, runs: number, shardFloats: number): void {
  const shapes: number[][] = []
  for (let left = n; left > 0; left -= TENSOR) shapes.push([Math.min(left, TENSOR)])
  const params = shapes.map((shape, i) => ({ name: `p${i}`, shape }))
  const opt = new HostAdamW(params, {
    weightDecay: 0.01,
    stateDtype: stateDtype as 'float32' | 'bfloat16',
    shardFloats,
  })
  const source = Float32Array.from({ length: TENSOR }, () => Math.random() - 0.5)
  const grads = shapes.map((s) => hostTensor('float32', s, source.subarray(0, s[0])))
  params.forEach((p, i) => {
    opt.load(p.name, grads[i])
    opt.setGrad(p.name, grads[i], false)
  })
  let step = 0
  const update = best(() => opt.step({ step: ++step, lr: 1e-4 }, 1), runs)
  const norm = best(() => opt.gradNorm(), runs)
  const copy = best(() => {
    for (const [i, p] of params.entries()) opt.setGrad(p.name, grads[i], false)
  }, runs)
  const ns = (ms: number) => +((ms * 1e6) / n).toFixed(3)
  console.log(
    JSON.stringify({
      bench: 'host_adamw',
      params: n,
      state_dtype: stateDtype,
      shards: Math.ceil(n / shardFloats),
      ns_per_param: ns(update + norm + copy),
      parts_ns_per_param: { update: ns(update), grad_norm: ns(norm), grad_copy_in: ns(copy) },
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  )
}

if (args.child !== undefined) {
  measure(Number(args.child), args.state, Number(args.runs), Number(args['shard-floats']))
} else {
  for (const n of args.params.split(',').map(Number)) {
    const res = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        process.argv[1],
        '--child',
        String(n),
        '--state',
        args.state,
        '--runs',
        args.runs,
        '--shard-floats',
        args['shard-floats'],
      ],
      { stdio: 'inherit' },
    )
    if (res.status !== 0) process.exitCode = 1
  }
}
