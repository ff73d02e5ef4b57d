/**
 * onnxruntime-node fills a preallocated CPU output by copying from a buffer onnxruntime allocated
 * for the run, and that buffer is freed only when V8 collects the run's leftovers. V8 does not see
 * those native bytes, so it may collect after the next run has allocated its own: a training step's
 * gradients were then held three times (the optimizer's copy, this run's, the last run's).
 */
import v8 from 'node:v8'
import vm from 'node:vm'

/** Outputs written into caller buffers from this many bytes on are worth a collection. */
export const RECLAIM_OUTPUT_BYTES = 64 * 2 ** 20

let collect: (() => void) | undefined

function collector(): () => void {
  if (!collect) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (exposed) collect = exposed
    else {
      // the process was not started with --expose-gc: expose it now, read it from a fresh context
      v8.setFlagsFromString('--expose-gc')
      collect = vm.runInNewContext('gc') as () => void
    }
  }
  return collect
}

/** Frees the native buffers of finished runs: one turn of the event loop (the run lets go), then a full collection. */
export async function reclaimRunOutputs(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  collector()()
}
