import { readlinkSync } from 'node:fs'
import os from 'node:os'

/**
 * Raises the calling thread's niceness to at least `nice` (Linux: niceness is per thread, and the
 * threads it starts afterwards, such as onnxruntime's intra-op pool, inherit it). A trainer sharing
 * cores with the API, the stream fan-out and Postgres then takes only the CPU they leave idle; on a
 * machine of its own it loses nothing. Returns the niceness now in effect, or undefined where the
 * platform does not expose thread ids (the thread keeps its priority).
 */
export function lowerThreadPriority(nice: number): number | undefined {
  let tid: number
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
  } catch {
    return undefined
  }
  if (!Number.isInteger(tid)) return undefined
  const current = os.getPriority(tid)
  if (nice > current) os.setPriority(tid, nice)
  return os.getPriority(tid)
}
