import type { DeviceValue } from './ort-values.ts'

/** Bytes that crossed between host memory and an accelerator, and the session runs that moved them. */
export interface TransferCounts {
  hostToDevice: number
  deviceToHost: number
  runs: number
}

export const noTransfers = (): TransferCounts => ({ hostToDevice: 0, deviceToHost: 0, runs: 0 })

/** Everything this thread's sessions moved so far (each worker thread counts its own). */
const totals = noTransfers()

/** A copy of this thread's running totals: subtract two with `transfersBetween`. */
export function transferTotals(): TransferCounts {
  return { ...totals }
}

export function transfersBetween(before: TransferCounts, after: TransferCounts): TransferCounts {
  return {
    hostToDevice: after.hostToDevice - before.hostToDevice,
    deviceToHost: after.deviceToHost - before.deviceToHost,
    runs: after.runs - before.runs,
  }
}

const byteSize = (v: DeviceValue): number => {
  const data = v.location === 'cpu' ? (v.data as ArrayBufferView) : undefined
  return data ? data.byteLength : 0
}

/**
 * Counts one run on an accelerator (the CPU provider moves nothing and is not counted): every input
 * located in host memory goes up, every output that comes back in host memory comes down; values
 * that stay on the device ('gpu-buffer') move nothing.
 */
export function countRun(inputs: readonly DeviceValue[], outputs: readonly DeviceValue[]): TransferCounts {
  const run = noTransfers()
  run.runs = 1
  for (const v of inputs) run.hostToDevice += byteSize(v)
  for (const v of outputs) run.deviceToHost += byteSize(v)
  totals.hostToDevice += run.hostToDevice
  totals.deviceToHost += run.deviceToHost
  totals.runs += 1
  return run
}
