import path from 'node:path'
import { defineConfig } from 'prisma/config'

// Prisma's CLI downloads a native schema engine that is unreachable offline. `generate`,
// `validate` and `format` only need *an* executable at that path, so point it at a stub unless the
// user supplies a real engine. Migrations are applied by our own runner (src/db/migrate.ts).
if (!process.env.PRISMA_SCHEMA_ENGINE_BINARY) {
  process.env.PRISMA_SCHEMA_ENGINE_BINARY = path.resolve('scripts/prisma-engine-stub/schema-engine')
}

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
})
