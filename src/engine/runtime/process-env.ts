/**
 * glibc mmaps allocations above 32 MiB and unmaps them on free, so every large output of a training
 * step paid for fresh zeroed pages (10-20x slower steps). Raising both thresholds keeps them on the
 * heap. glibc reads these once at process start, and worker threads share their process's malloc:
 * the process that trains must be started with this environment.
 */
export const TRAINING_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: '4294967295',
  MALLOC_TRIM_THRESHOLD_: '4294967295',
})

/** The environment to spawn a training process with: `base` plus the malloc settings (values already set win). */
export function trainingProcessEnv(
  base: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v
  for (const [k, v] of Object.entries(TRAINING_MALLOC_ENV)) env[k] ??= v
  return env
}

/** Malloc settings missing from an environment (the worker warns when its own lacks them). */
export function missingMallocSettings(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(TRAINING_MALLOC_ENV).filter((k) => env[k] === undefined || env[k] === '')
}
