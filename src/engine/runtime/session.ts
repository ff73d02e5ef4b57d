import ort from 'onnxruntime-node'
import { AppError, GraphError, ShapeError, ValidationError } from '../../errors.ts'
import type { SerializedGraph } from '../graph.ts'
import type { HostTensor } from './host-tensor.ts'
import { type DeviceValue, toDeviceValue, toHostTensor } from './ort-values.ts'
import type { Provider } from './providers.ts'
import { RECLAIM_OUTPUT_BYTES, reclaimRunOutputs } from './reclaim.ts'
import type { DeviceState } from './state.ts'
import { countRun, noTransfers, type TransferCounts } from './transfers.ts'

export interface GraphSessionOptions {
  provider: Provider
  /**
   * Whether idle intra-op threads spin-wait for the next parallel section (onnxruntime's default;
   * fastest alone). Off, they sleep: better when other work shares the cores. Default: see
   * setSessionDefaults.
   */
  allowSpinning?: boolean
  /** Threads for one op (onnxruntime's default: one per core). */
  intraOpThreads?: number
  /** Threads across independent ops; 1 runs the graph sequentially (the default). */
  interOpThreads?: number
  /**
   * Outputs that replace a state tensor after each run, as output name -> state name. They stay on
   * the device on WebGPU and are fed back as inputs of the next run without a host round trip.
   */
  stateOutputs?: Readonly<Record<string, string>>
  /** Shown in error messages. */
  name?: string
  /** onnxruntime's log level: 0 verbose (prints node placement) .. 3 errors only (default). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4
}

export interface IoSpec {
  name: string
  dtype: string
  /** Numbers are static, strings are named dynamic dims; [] is a scalar or an unknown shape. */
  shape: readonly (number | string)[]
}

function ioSpecs(meta: readonly ort.InferenceSession.ValueMetadata[]): IoSpec[] {
  return meta.map((m) =>
    m.isTensor
      ? { name: m.name, dtype: m.type, shape: [...m.shape] }
      : { name: m.name, dtype: 'unknown', shape: [] },
  )
}

const fmtDims = (dims: readonly (number | string)[]): string => `[${dims.join(', ')}]`

function firstLines(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')
    .slice(0, 3)
    .join(' ')
}

/**
 * An onnxruntime session over a built graph. Feeds and results are HostTensors; tensors kept on the
 * device stay inside a DeviceState. Every failure surfaces as an AppError naming the tensor at fault.
 */
export class GraphSession {
  readonly inputs: readonly IoSpec[]
  readonly outputs: readonly IoSpec[]
  private readonly inputByName: Map<string, IoSpec>
  private readonly outputNames: Set<string>
  private readonly stateOutputs: ReadonlyMap<string, string>
  private released = false
  /** Bytes the last run moved between host and device (zero on the CPU provider). */
  lastTransfers: TransferCounts = noTransfers()

  constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: Provider,
    readonly name: string,
    stateOutputs: Readonly<Record<string, string>>,
  ) {
    this.inputs = ioSpecs(session.inputMetadata)
    this.outputs = ioSpecs(session.outputMetadata)
    this.inputByName = new Map(this.inputs.map((s) => [s.name, s]))
    this.outputNames = new Set(this.outputs.map((s) => s.name))
    this.stateOutputs = new Map(Object.entries(stateOutputs))
    for (const out of this.stateOutputs.keys()) {
      if (!this.outputNames.has(out)) {
        throw new GraphError(`session '${name}': state output '${out}' is not an output of the graph`)
      }
    }
  }

  /**
   * Runs with host feeds only; returns the requested outputs (all when omitted). On the CPU, outputs
   * named in `into` are written into those host buffers (no copy of them comes back).
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    outputs?: readonly string[],
    into?: Readonly<Record<string, HostTensor>>,
  ): Promise<Record<string, HostTensor>> {
    const host = await this.execute(feeds, undefined, outputs ?? [...this.outputNames], into)
    // after execute's frame is gone: while it lives, the run's native buffers are not collectable
    const copied = Object.values(into ?? {}).reduce((bytes, t) => bytes + t.data.byteLength, 0)
    if (copied >= RECLAIM_OUTPUT_BYTES) await reclaimRunOutputs()
    return host
  }

  /**
   * Runs with graph inputs taken from `feeds` first, then from `state`; state outputs replace their
   * state tensors. Returns the requested non-state outputs (all of them when omitted).
   */
  async runWithState(
    state: DeviceState,
    feeds: Readonly<Record<string, HostTensor>>,
    outputs?: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    if (state.provider !== this.provider) {
      throw new ValidationError(
        `session '${this.name}' runs on ${this.provider} but the state lives on ${state.provider}`,
      )
    }
    const wanted = outputs ?? [...this.outputNames].filter((n) => !this.stateOutputs.has(n))
    return this.execute(feeds, state, wanted)
  }

  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    await this.session.release()
  }

  private async execute(
    feeds: Readonly<Record<string, HostTensor>>,
    state: DeviceState | undefined,
    wanted: readonly string[],
    into: Readonly<Record<string, HostTensor>> = {},
  ): Promise<Record<string, HostTensor>> {
    if (this.released) throw new AppError('invalid_state', `session '${this.name}' was released`)
    for (const n of wanted) {
      if (!this.outputNames.has(n)) {
        throw new ValidationError(
          `session '${this.name}': unknown output '${n}' (outputs: ${[...this.outputNames].join(', ')})`,
        )
      }
    }
    const ortFeeds = this.collectFeeds(feeds, state)
    const fetches = this.placedFetches(
      state ? [...new Set([...wanted, ...this.stateOutputs.keys()])] : wanted,
    )
    const targets = this.outputTargets(fetches, into)
    let results: ort.InferenceSession.OnnxValueMapType
    try {
      results = await this.session.run(ortFeeds, targets)
    } catch (err) {
      throw new AppError(
        'training_failed',
        `session '${this.name}' failed on ${this.provider}: ${firstLines(err)}`,
        {
          session: this.name,
        },
      )
    }
    // The CPU provider moves nothing: skip even listing the values.
    if (this.provider !== 'cpu') {
      const outputs = fetches.map((n) => results[n] as DeviceValue)
      this.lastTransfers = countRun(Object.values(ortFeeds), outputs)
    }
    if (state) {
      for (const [out, stateName] of this.stateOutputs) state.replace(stateName, results[out] as DeviceValue)
    }
    const host: Record<string, HostTensor> = {}
    for (const n of wanted) {
      if (state && this.stateOutputs.has(n)) continue
      host[n] = into[n] ?? toHostTensor(results[n] as DeviceValue, n)
    }
    return host
  }

  /**
   * Where outputs are bound to GPU buffers (state outputs on WebGPU), onnxruntime-node (1.30) takes
   * only a fetch of every output: it refuses most others ("Output count mismatch") and misplaces
   * the rest (a state output to the host, a host output to a GPU buffer). Such a run fetches every
   * output; graphs run this way have only outputs their callers read.
   */
  private placedFetches(fetches: readonly string[]): readonly string[] {
    if (this.provider !== 'webgpu' || this.stateOutputs.size === 0) return fetches
    return this.outputs.map((o) => o.name)
  }

  /** Fetches as onnxruntime takes them: preallocated values for outputs written `into` host buffers. */
  private outputTargets(
    fetches: readonly string[],
    into: Readonly<Record<string, HostTensor>>,
  ): ort.InferenceSession.FetchesType {
    const names = Object.keys(into)
    if (names.length === 0) return [...fetches]
    if (this.provider !== 'cpu') {
      throw new ValidationError(`session '${this.name}': outputs into host buffers need the CPU provider`)
    }
    const targets: Record<string, DeviceValue | null> = Object.fromEntries(fetches.map((n) => [n, null]))
    for (const n of names) {
      const spec = this.outputs.find((o) => o.name === n)
      if (!spec || !fetches.includes(n)) {
        throw new ValidationError(`session '${this.name}': '${n}' is not a requested output`)
      }
      this.checkInput(spec, into[n].dtype, into[n].dims, new Map())
      targets[n] = this.wrap(n, into[n])
    }
    return targets
  }

  /** Checks names, dtypes, ranks, static dims and the consistency of named dims before onnxruntime sees them. */
  private collectFeeds(
    feeds: Readonly<Record<string, HostTensor>>,
    state: DeviceState | undefined,
  ): Record<string, DeviceValue> {
    for (const n of Object.keys(feeds)) {
      if (!this.inputByName.has(n)) {
        throw new ValidationError(
          `session '${this.name}': '${n}' is not an input (inputs: ${[...this.inputByName.keys()].join(', ')})`,
        )
      }
    }
    const out: Record<string, DeviceValue> = {}
    const missing: string[] = []
    const named = new Map<string, { size: number; input: string }>()
    for (const spec of this.inputs) {
      const host = feeds[spec.name]
      let value: DeviceValue | undefined
      let dtype: string
      let dims: readonly number[]
      if (host !== undefined) {
        dtype = host.dtype
        dims = host.dims
      } else if (state?.has(spec.name)) {
        value = state.value(spec.name)
        dtype = value.type
        dims = value.dims
      } else {
        missing.push(spec.name)
        continue
      }
      this.checkInput(spec, dtype, dims, named)
      out[spec.name] = value ?? this.wrap(spec.name, host!)
    }
    if (missing.length > 0) {
      throw new ValidationError(`session '${this.name}': missing inputs ${missing.join(', ')}`, { missing })
    }
    return out
  }

  /** Host tensors built without hostTensor() may still disagree with their dims or dtype. */
  private wrap(name: string, host: HostTensor): DeviceValue {
    try {
      return toDeviceValue(host)
    } catch (err) {
      throw new ValidationError(
        `session '${this.name}': input '${name}' ${host.dtype} [${host.dims.join(', ')}]: ${firstLines(err)}`,
        {
          input: name,
        },
      )
    }
  }

  private checkInput(
    spec: IoSpec,
    dtype: string,
    dims: readonly number[],
    named: Map<string, { size: number; input: string }>,
  ): void {
    if (dtype !== spec.dtype) {
      throw new ValidationError(
        `session '${this.name}': input '${spec.name}' expects ${spec.dtype}, got ${dtype}`,
        {
          input: spec.name,
          expected: spec.dtype,
          got: dtype,
        },
      )
    }
    if (spec.shape.length === 0) return // scalar or unknown: onnxruntime checks it
    const mismatch = () =>
      new ShapeError(
        `session '${this.name}': input '${spec.name}' expects dims ${fmtDims(spec.shape)}, got ${fmtDims(dims)}`,
        { input: spec.name, expected: spec.shape, got: dims },
      )
    if (dims.length !== spec.shape.length) throw mismatch()
    spec.shape.forEach((want, i) => {
      const got = dims[i]
      if (typeof want === 'number') {
        if (want >= 0 && want !== got) throw mismatch()
        return
      }
      const seen = named.get(want)
      if (seen === undefined) named.set(want, { size: got, input: spec.name })
      else if (seen.size !== got) {
        throw new ShapeError(
          `session '${this.name}': dim '${want}' is ${seen.size} in input '${seen.input}' but ${got} in input '${spec.name}' ${fmtDims(dims)}`,
          { dim: want, inputs: [seen.input, spec.name], sizes: [seen.size, got] },
        )
      }
    })
  }
}

const sessionDefaults: { allowSpinning: boolean; profilePrefix?: string } = { allowSpinning: true }

/** Defaults for the sessions this thread creates from now on (each worker_thread has its own). */
export function setSessionDefaults(defaults: Partial<typeof sessionDefaults>): void {
  Object.assign(sessionDefaults, defaults)
}

/**
 * Creates a session from a serialized graph. Frozen weights come from memory (externalData); on
 * WebGPU, state outputs are asked to stay in GPU buffers and all other outputs come back to the host.
 */
export async function createGraphSession(
  graph: SerializedGraph,
  options: GraphSessionOptions,
): Promise<GraphSession> {
  const name = options.name ?? 'graph'
  const stateOutputs = options.stateOutputs ?? {}
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [options.provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // The planned memory pattern is a block of its own allocated from a session's second run on,
    // while the arena keeps the first run's blocks: twice the activations for nothing.
    enableMemPattern: false,
    interOpNumThreads: options.interOpThreads ?? 1,
    logSeverityLevel: options.logSeverityLevel ?? 3,
    externalData: graph.externalData.map((e) => ({ path: e.path, data: e.data })),
  }
  if (!(options.allowSpinning ?? sessionDefaults.allowSpinning)) {
    sessionOptions.extra = { session: { intra_op: { allow_spinning: '0' } } }
  }
  if (graph.recomputes) {
    // Merged with its forward twin, a recomputed value (a weight's upcast, say) would be kept alive
    // from the forward to the backward, as if nothing were recomputed: 0.5B LoRA steps held 3.4 GB
    // instead of 1.5 GB.
    sessionOptions.extra = {
      ...sessionOptions.extra,
      optimization: { disable_specified_optimizers: 'CommonSubexpressionElimination' },
    }
  }
  if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads
  if (sessionDefaults.profilePrefix) {
    // onnxruntime writes <prefix>_<time>.json (per-node times; GPU kernel times on WebGPU) when released.
    sessionOptions.enableProfiling = true
    sessionOptions.profileFilePrefix = `${sessionDefaults.profilePrefix}${name}`
  }
  if (options.provider === 'webgpu' && Object.keys(stateOutputs).length > 0) {
    sessionOptions.preferredOutputLocation = Object.fromEntries(
      Object.keys(stateOutputs).map((out) => [out, 'gpu-buffer' as const]),
    )
  }
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(graph.model, sessionOptions)
  } catch (err) {
    throw new GraphError(
      `session '${name}' could not be created on ${options.provider}: ${firstLines(err)}`,
      {
        session: name,
        provider: options.provider,
      },
    )
  }
  try {
    return new GraphSession(session, options.provider, name, stateOutputs)
  } catch (err) {
    await session.release()
    throw err
  }
}
