/** `sso bench`: runs the benchmarks under bench/ (each prints JSON lines) in child processes. */
import { spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { AppError } from '../../errors.ts'
import { type Command, UsageError } from '../command.ts'

const BENCH_DIR = fileURLToPath(new URL('../../../bench/', import.meta.url))

/**
 * The runnable benchmarks: bench/*.ts files that no other benchmark imports (those are shared
 * helpers: models, the service process, worker-thread entries).
 */
async function benchFiles(): Promise<Map<string, string>> {
  const files = (await readdir(BENCH_DIR).catch(() => [] as string[])).filter((f) => f.endsWith('.ts')).sort()
  const texts = await Promise.all(files.map((f) => readFile(BENCH_DIR + f, 'utf8')))
  const runnable = files.filter((f) => !texts.some((text, i) => files[i] !== f && text.includes(`./${f}`)))
  return new Map(runnable.map((f) => [f.replace(/(\.bench)?\.ts$/, ''), BENCH_DIR + f]))
}

function runBench(name: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' })
    child.on('error', (e) => reject(new AppError('internal', `bench '${name}' did not start: ${e.message}`)))
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

export const bench: Command = {
  path: ['bench'],
  summary: 'run benchmarks from bench/ (JSON lines on stdout)',
  args: '[name...]',
  options: {
    list: { type: 'boolean', description: 'list the benchmarks and exit' },
  },
  details: `Without names every benchmark runs, one after the other. Compare numbers only from the same machine.
Example: sso bench stream api`,
  async run(ctx) {
    const benches = await benchFiles()
    const names = [...benches.keys()]
    if (ctx.values.list) {
      process.stdout.write(names.length ? `${names.join('\n')}\n` : 'no benchmarks found\n')
      return 0
    }
    const wanted = ctx.positionals.length > 0 ? ctx.positionals : names
    const unknown = wanted.filter((n) => !benches.has(n))
    if (unknown.length > 0) {
      throw new UsageError(
        `unknown benchmark ${unknown.join(', ')}; available: ${names.join(', ') || 'none'}`,
        this,
      )
    }
    let failed = 0
    for (const name of wanted) {
      const code = await runBench(name, benches.get(name)!)
      if (code !== 0) {
        process.stderr.write(`bench '${name}' exited with ${code}\n`)
        failed++
      }
    }
    return failed > 0 ? 1 : 0
  },
}
