import { DeviceState, type GraphSession, type HostTensor, type Provider } from '../engine/index.ts'

/**
 * Weights a policy feeds to its sessions as graph inputs, kept on the device between runs where the
 * provider allows it (WebGPU): uploaded once after each change rather than with every run, which for
 * generation meant the trainable weights again for every decoded token. Elsewhere the host tensors
 * are fed as they are (the CPU provider reads them in place).
 */
export class ResidentWeights {
  /** The device copies; on WebGPU a policy's trainable tensors and optimizer state live here too. */
  readonly state: DeviceState
  private fresh = false

  constructor(
    provider: Provider,
    /** The current host tensors, by graph input name. */
    private readonly current: () => Record<string, HostTensor>,
  ) {
    this.state = new DeviceState(provider)
  }

  /** The host tensors changed: the next run uploads them again. */
  changed(): void {
    this.fresh = false
  }

  /**
   * Runs `session` with `feeds` and the weights; returns the requested outputs (all when omitted),
   * those named in `into` written into its host buffers (CPU only, see GraphSession.run).
   */
  async run(
    session: GraphSession,
    feeds: Readonly<Record<string, HostTensor>>,
    outputs?: readonly string[],
    into?: Readonly<Record<string, HostTensor>>,
  ): Promise<Record<string, HostTensor>> {
    if (this.state.provider !== 'webgpu') return session.run({ ...feeds, ...this.current() }, outputs, into)
    await this.upload()
    return session.runWithState(this.state, feeds, outputs)
  }

  /** WebGPU: copies the current tensors to the device unless they are there already. */
  async upload(): Promise<void> {
    if (this.fresh) return
    const current = this.current()
    for (const [name, t] of Object.entries(current)) this.state.set(name, t)
    await this.state.upload(Object.keys(current))
    this.fresh = true
  }

  release(): Promise<void> {
    this.fresh = false
    return this.state.release()
  }
}
