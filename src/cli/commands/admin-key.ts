/** `sso admin-key`: a new admin API key written straight into the database, for when the first one is lost. */
import { createApiKey } from '../../api/plugins/app/api-key-auth.ts'
import { loadConfig } from '../../config.ts'
import { openDatabase } from '../../db/database.ts'
import { createRepositories } from '../../db/repositories.ts'
import { createLogger } from '../../log.ts'
import { type Command, positionalArgs, stringOption } from '../command.ts'

export const adminKey: Command = {
  path: ['admin-key'],
  summary: 'create a new admin API key directly in the database (recovery: no key needed)',
  options: {
    name: { type: 'string', arg: 'name', default: 'admin (recovered)', description: 'name of the new key' },
  },
  details: `Uses the service's database: DATABASE_URL, or the embedded PostgreSQL in DATA_DIR (shared
with a running 'sso serve', or started for the moment). Run it where the service runs, with the same
environment (.env). Prints the key alone on stdout. Revoke lost keys afterwards: DELETE /v1/api-keys/{id}.`,
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const name = stringOption(ctx, 'name', this)
    const config = loadConfig()
    const db = await openDatabase(config, createLogger('warn'), 1, { attach: true })
    try {
      const created = await createApiKey(createRepositories(db.prisma).apiKeys, name, ['admin'], null)
      process.stderr.write(`created admin API key '${created.name}' (id ${created.id}):\n`)
      process.stdout.write(`${created.key}\n`)
    } finally {
      await db.close()
    }
    return 0
  },
}
