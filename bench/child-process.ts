/**
 * Benchmark measurements in processes of their own, so that each peak RSS (VmHWM) is its own. A
 * watched child is killed when its resident set passes its limit, or when the machine's available
 * memory falls under MIN_AVAILABLE_BYTES, and reported as such: the kernel's OOM killer would pick
 * its victim among every process of the machine.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

/** What the rest of the machine keeps while a watched measurement runs. */
const MIN_AVAILABLE_BYTES = 2 ** 30
const POLL_MS = 100

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** This process's peak resident set (VmHWM), in MB. */
export const peakRssMb = () => procBytes('/proc/self/status', 'VmHWM') / 2 ** 20
/** This process's resident set now (VmRSS), in MB. */
export const rssMb = () => procBytes('/proc/self/status', 'VmRSS') / 2 ** 20

const PYTHONS = ['python3', '/usr/bin/python3']

/** The first Python that imports torch: the one asked for, else python3, else /usr/bin/python3 (Debian's python3-torch). */
export function findTorchPython(asked: string | undefined): { python: string | null; tried: string[] } {
  const tried = asked ? [asked] : PYTHONS
  for (const python of tried) {
    if (python.includes('/') && !existsSync(python)) continue
    try {
      execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' })
      return { python, tried }
    } catch {}
  }
  return { python: null, tried }
}

/** A kB field of a /proc status or meminfo text, in bytes (NaN once the process is gone). */
function procBytes(file: string, key: string): number {
  try {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(file, 'utf8'))
    return m ? Number(m[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Why a watched child should stop now, or null. */
function overLimit(pid: number, maxRssBytes: number): string | null {
  const mb = (b: number) => Math.round(b / 2 ** 20)
  const rss = procBytes(`/proc/${pid}/status`, 'VmRSS')
  if (rss > maxRssBytes) return `resident set ${mb(rss)} MB passed the ${mb(maxRssBytes)} MB limit`
  const available = procBytes('/proc/meminfo', 'MemAvailable')
  if (available < MIN_AVAILABLE_BYTES)
    return `the machine had ${mb(available)} MB available (the child held ${mb(rss)} MB)`
  return null
}

export type ChildOutcome = { result: Record<string, unknown> } | { killed: string }

/** A child run failed: its exit status and the end of its stderr. */
export class ChildError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message)
  }
}

/**
 * Runs `file args`, returns the JSON object its last stdout line holds, or why it was killed when
 * it passed `maxRssBytes`. Throws a ChildError when it fails on its own.
 */
export function runJsonChild(
  file: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; maxRssBytes?: number },
): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let killed: string | null = null
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
      process.stderr.write(d)
    })
    const watch =
      opts.maxRssBytes === undefined
        ? undefined
        : setInterval(() => {
            killed ??= overLimit(child.pid!, opts.maxRssBytes!)
            if (killed) child.kill('SIGKILL')
          }, POLL_MS)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearInterval(watch)
      if (killed) return resolve({ killed })
      if (code !== 0) return reject(new ChildError(`${file} exited with ${code ?? signal}`, stderr))
      try {
        resolve({ result: JSON.parse(stdout.trim().split('\n').at(-1)!) })
      } catch {
        reject(new ChildError(`${file} printed no JSON line`, stderr))
      }
    })
  })
}
