/** `sso workers list`: the service's worker processes, their devices and the runs they hold. */
import type { WorkerDto } from '../../schemas/workers.ts'
import { API_OPTIONS, clientFor, printListing } from '../api-options.ts'
import { type Command, positionalArgs } from '../command.ts'

export const workersList: Command = {
  path: ['workers', 'list'],
  summary: 'list worker processes with their devices and runs',
  options: {
    all: { type: 'boolean', description: 'also workers stopped or lost in the last day' },
    ...API_OPTIONS,
  },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const answer = await clientFor(ctx).get<{ items: WorkerDto[] }>('/v1/workers', {
      all: ctx.values.all ? 'true' : undefined,
    })
    const rows = answer.items.map((w) => ({
      id: w.id,
      state: w.state,
      devices: w.devices.join(','),
      runs: `${w.run_ids.length}/${w.concurrency}`,
      heartbeat: w.heartbeat_at,
    }))
    printListing(ctx, answer, rows, ['id', 'state', 'devices', 'runs', 'heartbeat'], 'no live workers')
    return 0
  },
}
