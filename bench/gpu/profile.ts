/**
 * Where a WebGPU session's time goes, from onnxruntime's profile files (setSessionDefaults({
 * profilePrefix })). On WebGPU the profile holds two kinds of events per kernel: 'Node' events, the
 * host's time to record and dispatch it, and 'Api' events, its GPU time from timestamp queries (named
 * `node&opType&program`, present when the adapter offers timestamp queries).
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

interface ProfileEvent {
  cat: string
  name: string
  ts: number
  dur: number
  args?: { op_name?: string; provider?: string; shapes?: string }
}

export interface ProfileSummary {
  /** Session runs the totals are divided by (all but the first, which compiles the shaders). */
  runs: number
  /** GPU time of all kernels per run, from timestamp queries (absent without them). */
  gpu_ms_per_run?: number
  /** Host time spent recording and dispatching kernels per run. */
  host_dispatch_ms_per_run: number
  kernels_per_run: number
  /** GPU (else host) ms per run by op type, largest first. */
  by_op: Record<string, number>
  /** Kernels per run by op type, most first: what a smaller graph would have to cut. */
  kernels_by_op: Record<string, number>
  /** The slowest kernels of one run, with their shapes. */
  top_kernels: { name: string; ms: number; shapes?: string }[]
}

const ms = (us: number, runs: number) => +(us / 1000 / runs).toFixed(2)

function topEntries(
  totals: Map<string, number>,
  count: number,
  show: (total: number) => number,
): Record<string, number> {
  return Object.fromEntries(
    [...totals]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([k, total]) => [k, show(total)]),
  )
}

/** onnxruntime names a profile `<prefix><session>_<date>_<time>.json`; the prefix here is a folder. */
const SESSION_OF_FILE = /^(.*)_\d{4}-\d{2}-\d{2}_[\d-]+_\d+\.json$/

/** Per session profiled in `dir`: its kernels' time per run, each session having run `runs` times (≥ 2). */
export function summarizeProfiles(dir: string, runs: number): Record<string, ProfileSummary> {
  const files = new Map<string, ProfileEvent[]>()
  for (const f of readdirSync(dir)) {
    const session = SESSION_OF_FILE.exec(f)?.[1]
    if (session === undefined) continue
    const events = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as ProfileEvent[]
    files.set(session, [...(files.get(session) ?? []), ...events])
  }
  return Object.fromEntries([...files].map(([session, events]) => [session, summarize(events, runs)]))
}

/** Every run but the first (shader compilation, first uploads), each run having the same kernels. */
const afterFirstRun = (xs: ProfileEvent[], runs: number) =>
  xs.toSorted((a, b) => a.ts - b.ts).slice(xs.length / runs)

function summarize(events: ProfileEvent[], allRuns: number): ProfileSummary {
  const gpu = afterFirstRun(
    events.filter((e) => e.cat === 'Api' && e.name.split('&').length === 3),
    allRuns,
  )
  const host = afterFirstRun(
    events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')),
    allRuns,
  )
  const runs = allRuns - 1
  const byOp = new Map<string, number>()
  const countByOp = new Map<string, number>()
  const add = (op: string, us: number) => {
    byOp.set(op, (byOp.get(op) ?? 0) + us)
    countByOp.set(op, (countByOp.get(op) ?? 0) + 1)
  }
  if (gpu.length > 0) for (const e of gpu) add(e.name.split('&')[1], e.dur)
  else for (const e of host) add(e.args?.op_name ?? '?', e.dur)
  const slowest = (gpu.length > 0 ? gpu : host).toSorted((a, b) => b.dur - a.dur).slice(0, 12)
  const sum = (xs: ProfileEvent[]) => xs.reduce((a, e) => a + e.dur, 0)
  return {
    runs,
    ...(gpu.length > 0 ? { gpu_ms_per_run: ms(sum(gpu), runs) } : {}),
    host_dispatch_ms_per_run: ms(sum(host), runs),
    kernels_per_run: Math.round((gpu.length || host.length) / runs),
    by_op: topEntries(byOp, 15, (us) => ms(us, runs)),
    kernels_by_op: topEntries(countByOp, 15, (n) => Math.round(n / runs)),
    top_kernels: slowest.map((e) => ({ name: e.name, ms: ms(e.dur, 1), shapes: e.args?.shapes })),
  }
}
