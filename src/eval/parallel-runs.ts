/**
 * How many benchmark runs may train side by side: no more than the cores (one thread each), a cap, and
 * what memory holds at each run's estimated peak (src/sso/memory-plan.ts). A run killed for memory
 * halfway through a two-hour benchmark loses the lot; refusing at start-up costs nothing.
 */
import { ValidationError } from '../errors.ts'
import type { ChatPrompt } from '../sso/policy-port.ts'
import { systemPrompt } from '../sso/principles.ts'
import type { PrincipleSetSpec } from '../sso/trainer-interface.ts'

/** Share of the memory available at start-up that the runs may plan on (the rest: evaluation, caches). */
const MEMORY_HEADROOM = 0.9

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`

/**
 * The longest prompt an online run over `queries` can train on: each query plain and under a system
 * message of the `featuresPerQuery` longest principles of the set (and its concision principle), good
 * side and bad side. An upper bound: the policy picks its principles at run time.
 */
export function longestOnlinePrompt(
  countTokens: (prompt: ChatPrompt) => number,
  set: PrincipleSetSpec,
  queries: readonly string[],
  featuresPerQuery: number,
): number {
  const longest = (side: 'good' | 'bad') => {
    const byLength = [...set.principles].sort((a, b) => b[side].length - a[side].length)
    return systemPrompt(
      [...byLength.slice(0, featuresPerQuery), ...(set.concision ? [set.concision] : [])],
      side,
    )
  }
  const systems = [undefined, longest('good'), longest('bad')]
  return Math.max(...queries.flatMap((user) => systems.map((system) => countTokens({ system, user }))))
}

export interface ParallelRunsInput {
  cores: number
  /** The most runs at once whatever the machine. */
  cap: number
  /** Memory free at start-up (process.availableMemory()). */
  availableBytes: number
  /** The largest estimated peak of one run. */
  runBytes: number
  /** Runs asked for on the command line, if any. */
  requested?: number
}

export interface ParallelRuns {
  jobs: number
  limitedBy: 'cores' | 'cap' | 'memory' | 'requested'
  /** How many runs the memory holds at their estimated peak. */
  memoryFits: number
}

/**
 * The number of runs to train at once; a ValidationError naming the estimate when not even one fits, or
 * when `requested` runs would not.
 */
export function parallelRuns(o: ParallelRunsInput): ParallelRuns {
  const usable = o.availableBytes * MEMORY_HEADROOM
  const memoryFits = Math.floor(usable / o.runBytes)
  const estimate = `one run needs an estimated ${gb(o.runBytes)} at its peak, and ${gb(usable)} of the ${gb(o.availableBytes)} available may be planned on`
  if (memoryFits < 1)
    throw new ValidationError(`${estimate}: free memory, or shorten --max-new-tokens`, {
      run_bytes: o.runBytes,
      available_bytes: o.availableBytes,
    })
  if (o.requested !== undefined) {
    if (o.requested > memoryFits)
      throw new ValidationError(`--jobs ${o.requested} does not fit: ${estimate}, enough for ${memoryFits}`, {
        run_bytes: o.runBytes,
        available_bytes: o.availableBytes,
        jobs_that_fit: memoryFits,
      })
    return { jobs: o.requested, limitedBy: 'requested', memoryFits }
  }
  const limits = { cores: o.cores, cap: o.cap, memory: memoryFits } as const
  const [limitedBy, jobs] = Object.entries(limits).reduce((a, b) => (b[1] < a[1] ? b : a))
  return { jobs, limitedBy: limitedBy as ParallelRuns['limitedBy'], memoryFits }
}
