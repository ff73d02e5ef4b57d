/**
 * Optional MLflow tracking of one run through MLflow's REST API (2.0): the first attempt creates the
 * MLflow run in the experiment named by the run's `mlflow_experiment` metadata, logs hyperparameters
 * as params and keeps its id with the run, so attempts that resume after a pause or a takeover log
 * into that same MLflow run. Metrics are pushed in batches (log-batch, at most 1000 per call), and
 * the outcome sets the status. Tracking failures are logged and never fail training.
 */
import type { Config } from '../config.ts'
import type { RunsRepository } from '../db/runs-repository.ts'
import type { Logger } from '../log.ts'
import type { RunDto } from '../schemas/runs.ts'
import { resolveHyperparameters } from '../sso/hyperparameters.ts'

const FLUSH_MS = 2000
const MAX_METRICS_PER_BATCH = 1000
const MAX_PARAMS_PER_BATCH = 100

interface MlflowMetric {
  key: string
  value: number
  timestamp: number
  step: number
}

/** Flattens nested hyperparameters into MLflow params (`sampling.chosen.temperature`). */
function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k))
  }
  return [[prefix, JSON.stringify(value).slice(0, 500)]]
}

type MlflowSettings = Pick<
  Config,
  'MLFLOW_TRACKING_URI' | 'MLFLOW_TRACKING_USERNAME' | 'MLFLOW_TRACKING_PASSWORD' | 'MLFLOW_TRACKING_TOKEN'
>

/** The Authorization header MLflow's own client would send for these settings (basic auth first). */
export function mlflowAuthorization(settings: MlflowSettings): string | undefined {
  const { MLFLOW_TRACKING_USERNAME: user, MLFLOW_TRACKING_PASSWORD: password } = settings
  if (user !== undefined && password !== undefined) {
    return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  }
  return settings.MLFLOW_TRACKING_TOKEN ? `Bearer ${settings.MLFLOW_TRACKING_TOKEN}` : undefined
}

export class MlflowTracker {
  private pending: MlflowMetric[] = []
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private mlflowRunId: string | undefined

  private constructor(
    private readonly baseUrl: string,
    private readonly authorization: string | undefined,
    private readonly runs: RunsRepository,
    private readonly log: Logger,
  ) {}

  /** A tracker when MLFLOW_TRACKING_URI is set and the run asks for it; otherwise null. */
  static forRun(
    settings: MlflowSettings,
    run: RunDto,
    runs: RunsRepository,
    log: Logger,
  ): MlflowTracker | null {
    const experiment = run.metadata.mlflow_experiment
    const trackingUri = settings.MLFLOW_TRACKING_URI
    if (!trackingUri || !experiment) return null
    const tracker = new MlflowTracker(
      trackingUri.replace(/\/$/, ''),
      mlflowAuthorization(settings),
      runs,
      log,
    )
    tracker.enqueue(() => tracker.start(experiment, run))
    return tracker
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}/api/2.0/mlflow/${path}`, {
      method,
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(this.authorization ? { authorization: this.authorization } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`MLflow ${path} answered ${res.status}: ${text.slice(0, 200)}`)
    return (text ? JSON.parse(text) : {}) as T
  }

  private async start(experimentName: string, run: RunDto): Promise<void> {
    if (run.mlflow_run_id) {
      // An earlier attempt created it and logged the params; a paused or taken-over attempt left it RUNNING.
      this.mlflowRunId = run.mlflow_run_id
      return
    }
    let experimentId: string
    try {
      const found = await this.call<{ experiment: { experiment_id: string } }>(
        'GET',
        `experiments/get-by-name?experiment_name=${encodeURIComponent(experimentName)}`,
      )
      experimentId = found.experiment.experiment_id
    } catch {
      experimentId = (
        await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name: experimentName })
      ).experiment_id
    }
    const created = await this.call<{ run: { info: { run_id: string } } }>('POST', 'runs/create', {
      experiment_id: experimentId,
      run_name: run.id,
      start_time: Date.now(),
      tags: [
        { key: 'sso.run_id', value: run.id },
        { key: 'sso.method', value: run.method },
      ],
    })
    this.mlflowRunId = created.run.info.run_id
    // Kept before anything is logged to it, so that no later attempt can open a second MLflow run.
    await this.runs.setMlflowRunId(run.id, this.mlflowRunId)
    // The settings the trainer runs with: the stored ones leave the method's defaults (beta, ...) unset.
    const params = flatten(resolveHyperparameters(run.method, run.hyperparameters)).map(([key, value]) => ({
      key,
      value,
    }))
    params.push({ key: 'method', value: run.method }, { key: 'seed', value: String(run.seed) })
    for (let i = 0; i < params.length; i += MAX_PARAMS_PER_BATCH) {
      await this.call('POST', 'runs/log-batch', {
        run_id: this.mlflowRunId,
        params: params.slice(i, i + MAX_PARAMS_PER_BATCH),
      })
    }
  }

  /** Serialises calls; a failure is logged and the next call still runs. */
  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err) => this.log.warn({ err }, 'MLflow tracking call failed'))
  }

  logMetrics(step: number, values: Record<string, number>): void {
    const timestamp = Date.now()
    for (const [key, value] of Object.entries(values)) {
      if (Number.isFinite(value)) this.pending.push({ key, value, timestamp, step })
    }
    if (this.pending.length >= MAX_METRICS_PER_BATCH) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS)
  }

  private flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const metrics = this.pending.splice(0)
    if (metrics.length === 0) return
    this.enqueue(async () => {
      if (!this.mlflowRunId) return
      for (let i = 0; i < metrics.length; i += MAX_METRICS_PER_BATCH) {
        await this.call('POST', 'runs/log-batch', {
          run_id: this.mlflowRunId,
          metrics: metrics.slice(i, i + MAX_METRICS_PER_BATCH),
        })
      }
    })
  }

  /** Pushes what is left and records how the attempt ended (a paused run stays RUNNING). */
  async finish(outcome: 'succeeded' | 'failed' | 'cancelled' | 'paused'): Promise<void> {
    this.flush()
    if (outcome !== 'paused') {
      const status = outcome === 'succeeded' ? 'FINISHED' : outcome === 'failed' ? 'FAILED' : 'KILLED'
      this.enqueue(async () => {
        if (this.mlflowRunId)
          await this.call('POST', 'runs/update', { run_id: this.mlflowRunId, status, end_time: Date.now() })
      })
    }
    await this.chain
  }
}
