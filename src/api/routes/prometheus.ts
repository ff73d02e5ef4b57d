import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { GPU_DEVICES, TRAIN_RUN_QUEUE, trainQueueFor } from '../../queue/jobs.ts'
import { RUN_STATUSES } from '../../schemas/runs.ts'

/** Each train-run queue under the device label it is reported with (`any`: auto and cpu runs). */
const QUEUES_BY_DEVICE: [string, string][] = [
  ['any', TRAIN_RUN_QUEUE],
  ...GPU_DEVICES.map((d): [string, string] => [d, trainQueueFor(d)]),
]

/** Run metrics of host<->device traffic, as the Prometheus gauges that report their latest values. */
const TRANSFER_GAUGES = [
  {
    name: 'sso_device_transfer_bytes_per_step',
    help: 'Bytes the last training step of a running run moved between host and device (accelerators only).',
    keys: {
      host_to_device: 'transfer/host_to_device_bytes',
      device_to_host: 'transfer/device_to_host_bytes',
    },
  },
  {
    name: 'sso_device_transfer_bytes_per_generated_token',
    help: "Bytes per generated token in a running run's last sampling phase (accelerators only).",
    keys: {
      host_to_device: 'transfer/generated_token_host_to_device_bytes',
      device_to_host: 'transfer/generated_token_device_to_host_bytes',
    },
  },
] as const

/** One metric in the text exposition format: HELP and TYPE, then a sample per label set (or one bare). */
function metric(
  name: string,
  type: 'gauge' | 'counter',
  help: string,
  samples: number | readonly (readonly [labels: string, value: number])[],
): string[] {
  const values =
    typeof samples === 'number' ? [`${name} ${samples}`] : samples.map(([l, v]) => `${name}{${l}} ${v}`)
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values]
}

const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const

/**
 * Prometheus text exposition: queue depth and live workers per device, runs by status, training
 * steps/s, stream clients, dropped frames, read-cache hits and misses, HTTP responses by status
 * class, and per running run on an accelerator the bytes moved between host and device per step and
 * per generated token.
 */
const metricsRoute: FastifyPluginAsync = async (app) => {
  let previous: { at: number; steps: number } | undefined
  const requests = new Map<string, number>(STATUS_CLASSES.map((c) => [c, 0]))
  app.addHook('onResponse', async (_request, reply) => {
    const statusClass = `${Math.floor(reply.statusCode / 100)}xx`
    requests.set(statusClass, (requests.get(statusClass) ?? 0) + 1)
  })

  app.get('/metrics', { schema: { tags: ['health'], hide: true } }, async (_request, reply) => {
    const [queues, byStatus, steps, workers, transfers] = await Promise.all([
      Promise.all(QUEUES_BY_DEVICE.map(([, queue]) => app.boss.getQueue(queue))),
      app.repos.runs.countByStatus(),
      app.repos.runs.sumRunningSteps(),
      app.repos.workers.list(false),
      app.repos.metrics.latestOfRunning(TRANSFER_GAUGES.flatMap((g) => Object.values(g.keys))),
    ])
    const now = Date.now()
    const stepsPerSecond =
      previous && now > previous.at ? Math.max(0, ((steps - previous.steps) * 1000) / (now - previous.at)) : 0
    previous = { at: now, steps }
    const byDevice = (value: (device: string, i: number) => number) =>
      QUEUES_BY_DEVICE.map(([device], i) => [`device="${device}"`, value(device, i)] as const)
    const lines = [
      ...metric(
        'sso_queue_depth',
        'gauge',
        'Training jobs waiting for a worker, by the device their runs ask for.',
        byDevice((_, i) => queues[i]?.queuedCount ?? 0),
      ),
      ...metric(
        'sso_workers',
        'gauge',
        'Live worker processes, by the devices they serve.',
        byDevice((device) => workers.filter((w) => device === 'any' || w.devices.includes(device)).length),
      ),
      ...metric(
        'sso_runs',
        'gauge',
        'Runs by status.',
        RUN_STATUSES.map((s) => [`status="${s}"`, byStatus[s] ?? 0] as const),
      ),
      ...metric('sso_active_runs', 'gauge', 'Runs being trained now.', byStatus.running ?? 0),
      ...metric(
        'sso_training_steps_per_second',
        'gauge',
        'Steps of all running runs per second since the previous scrape.',
        Number(stepsPerSecond.toFixed(3)),
      ),
      ...metric(
        'sso_stream_clients',
        'gauge',
        'WebSocket and SSE clients of this API process.',
        app.hub.subscriberCount,
      ),
      ...metric(
        'sso_stream_frames_received_total',
        'counter',
        'Frames this process received from workers.',
        app.hub.framesReceived,
      ),
      ...metric(
        'sso_stream_dropped_frames_total',
        'counter',
        'Live frames dropped for slow clients (resent after a resync).',
        app.streamStats.droppedFrames,
      ),
      ...metric(
        'sso_stream_resyncs_total',
        'counter',
        'Resyncs sent to clients that fell behind.',
        app.streamStats.resyncs,
      ),
      ...metric(
        'sso_read_cache_hits_total',
        'counter',
        "GET requests answered from this process's read cache.",
        app.readCache.hits,
      ),
      ...metric(
        'sso_read_cache_misses_total',
        'counter',
        'Cacheable GET requests that went to the database.',
        app.readCache.misses,
      ),
      ...metric(
        'sso_http_requests_total',
        'counter',
        'HTTP requests answered by this process, by status class.',
        [...requests].map(([statusClass, n]) => [`code="${statusClass}"`, n] as const),
      ),
      ...TRANSFER_GAUGES.flatMap((gauge) =>
        metric(
          gauge.name,
          'gauge',
          gauge.help,
          Object.entries(gauge.keys).flatMap(([direction, key]) =>
            transfers
              .filter((t) => t.key === key)
              .map((t) => [`run="${t.runId}",direction="${direction}"`, t.value] as const),
          ),
        ),
      ),
    ]
    return reply.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`)
  })
}

/** Not encapsulated, so the request counter's hook sees every route's responses, not only its own. */
export const prometheusRoutes = fp(metricsRoute, { name: 'prometheus-metrics' })
