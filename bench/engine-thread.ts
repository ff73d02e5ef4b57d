/** Worker-thread module of bench/engine.ts: runs transformer-block training steps off the main thread. */
import { adamW, buildTrainStep, createStepRunner, type StepRunner, serveThread } from '../src/engine/index.ts'
import { BENCH_TRANSFORMER, transformerBlock } from './models.ts'

let runner: StepRunner | undefined
let batch: ReturnType<typeof transformerBlock>['batch'] = {}
let step = 0

export const handlers = {
  async open(threads: number): Promise<void> {
    const m = transformerBlock(BENCH_TRANSFORMER)
    const fused = buildTrainStep(m.g, { loss: m.loss, params: m.params, optimizer: adamW(), clip: true })
    runner = await createStepRunner({ fused }, { provider: 'cpu', intraOpThreads: threads })
    runner.init(m.init)
    batch = m.batch
  },
  async steps(n: number): Promise<number> {
    let loss = 0
    for (let i = 0; i < n; i++)
      loss = (await runner!.step([batch], { step: ++step, lr: 1e-4, maxGradNorm: 1 })).loss
    return loss
  },
}

serveThread(handlers)
