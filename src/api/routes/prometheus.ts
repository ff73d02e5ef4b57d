import type { FastifyPluginAsync } from 'fastify'
import { GPU_DEVICES, TRAIN_RUN_QUEUE, trainQueueFor } from '../../queue/jobs.ts'
import { RUN_STATUSES } from '../../schemas/runs.ts'

/** Each train-run queue under the device label it is reported with (`any`: auto and cpu runs). */
const QUEUES_BY_DEVICE: [string, string][] = [
  ['any', TRAIN_RUN_QUEUE],
  ...GPU_DEVICES.map((d): [string, string] => [d, trainQueueFor(d)]),
]

/**
 * Prometheus text exposition: queue depth and live workers per device, runs by status, training
 * steps/s, stream clients, dropped frames, read-cache hits and misses.
 */

export const prometheusRoutes: FastifyPluginAsync = async (app) => {
  let previous: { at: number; steps: number } | undefined
  let requests = 0
  app.addHook('onResponse', async () => {
    requests++
  })

  app.get('/metrics', { schema: { tags: ['health'], hide: true } }, async (_request, reply) => {
    const [queues, byStatus, running, workers] = await Promise.all([
      Promise.all(QUEUES_BY_DEVICE.map(([, queue]) => app.boss.getQueue(queue))),
      app.repos.runs.countByStatus(),
      app.repos.runs.sumRunningSteps(),
      app.repos.workers.list(false),
    ])
    const steps = running
    const now = Date.now()
    const stepsPerSecond =
      previous && now > previous.at ? Math.max(0, ((steps - previous.steps) * 1000) / (now - previous.at)) : 0
    previous = { at: now, steps }
    const lines = [
      '# HELP sso_queue_depth Training jobs waiting for a worker, by the device their runs ask for.',
      '# TYPE sso_queue_depth gauge',
      ...QUEUES_BY_DEVICE.map(
        ([device], i) => `sso_queue_depth{device="${device}"} ${queues[i]?.queuedCount ?? 0}`,
      ),
      '# HELP sso_workers Live worker processes, by the devices they serve.',
      '# TYPE sso_workers gauge',
      ...QUEUES_BY_DEVICE.map(([device]) => {
        const serving = workers.filter((w) => device === 'any' || w.devices.includes(device))
        return `sso_workers{device="${device}"} ${serving.length}`
      }),
      '# HELP sso_runs Runs by status.',
      '# TYPE sso_runs gauge',
      ...RUN_STATUSES.map((s) => `sso_runs{status="${s}"} ${byStatus[s] ?? 0}`),
      '# HELP sso_active_runs Runs being trained now.',
      '# TYPE sso_active_runs gauge',
      `sso_active_runs ${byStatus.running ?? 0}`,
      '# HELP sso_training_steps_per_second Steps of all running runs per second since the previous scrape.',
      '# TYPE sso_training_steps_per_second gauge',
      `sso_training_steps_per_second ${stepsPerSecond.toFixed(3)}`,
      '# HELP sso_stream_clients WebSocket and SSE clients of this API process.',
      '# TYPE sso_stream_clients gauge',
      `sso_stream_clients ${app.hub.subscriberCount}`,
      '# HELP sso_stream_frames_received_total Frames this process received from workers.',
      '# TYPE sso_stream_frames_received_total counter',
      `sso_stream_frames_received_total ${app.hub.framesReceived}`,
      '# HELP sso_stream_dropped_frames_total Live frames dropped for slow clients (resent after a resync).',
      '# TYPE sso_stream_dropped_frames_total counter',
      `sso_stream_dropped_frames_total ${app.streamStats.droppedFrames}`,
      '# HELP sso_stream_resyncs_total Resyncs sent to clients that fell behind.',
      '# TYPE sso_stream_resyncs_total counter',
      `sso_stream_resyncs_total ${app.streamStats.resyncs}`,
      "# HELP sso_read_cache_hits_total GET requests answered from this process's read cache.",
      '# TYPE sso_read_cache_hits_total counter',
      `sso_read_cache_hits_total ${app.readCache.hits}`,
      '# HELP sso_read_cache_misses_total Cacheable GET requests that went to the database.',
      '# TYPE sso_read_cache_misses_total counter',
      `sso_read_cache_misses_total ${app.readCache.misses}`,
      '# HELP sso_http_requests_total HTTP requests answered by this process.',
      '# TYPE sso_http_requests_total counter',
      `sso_http_requests_total ${requests}`,
    ]
    return reply.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`)
  })
}
