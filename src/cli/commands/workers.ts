/** `sso workers list`: the service's worker processes, their devices and the runs they hold. */
import type { WorkerDto } from '../../schemas/workers.ts'
import { API_OPTIONS, clientFor, wantsJson } from '../api-options.ts'
import { type Command, positionalArgs } from '../command.ts'
import { formatTable, printJson } from '../output.ts'

export const workersList: Command = {
  path: ['workers', 'list'],
  summary: 'list worker processes with their devices and runs',
  options: {
    all: { type: 'boolean', description: 'also workers stopped or lost in the last day' },
    ...API_OPTIONS,
  },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const { items } = await clientFor(ctx).get<{ items: WorkerDto[] }>('/v1/workers', {
      all: ctx.values.all ? 'true' : undefined,
    })
    if (wantsJson(ctx)) {
      printJson({ items })
      return 0
    }
    if (items.length === 0) process.stdout.write('no live workers\n')
    else
      process.stdout.write(
        formatTable(
          items.map((w) => ({
            id: w.id,
            state: w.state,
            devices: w.devices.join(','),
            runs: `${w.run_ids.length}/${w.concurrency}`,
            heartbeat: w.heartbeat_at,
          })),
          ['id', 'state', 'devices', 'runs', 'heartbeat'],
        ),
      )
    return 0
  },
}
