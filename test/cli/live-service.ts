/**
 * The real service for end-to-end tests: `startServer` on an ephemeral port over a fresh test
 * database (embedded, or TEST_EXTERNAL_DATABASE_URL's server), with its in-process worker and a known
 * admin key.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type RunningServer, startServer } from '../../src/api/server.ts'
import { ApiClient } from '../../src/cli/api-client.ts'
import { loadConfig } from '../../src/config.ts'
import { createTestDatabase, DATABASE_TARGETS, stopEmbeddedServer } from '../helpers/db.ts'

export interface LiveService {
  url: string
  apiKey: string
  client: ApiClient
  server: RunningServer
  stop(): Promise<void>
}

/** `demo`: register the demo resources as a first start does (off by default: tests start empty). */
export async function startLiveService({ demo = false } = {}): Promise<LiveService> {
  // Prefer the machine's server in CI; the embedded one otherwise.
  const target = DATABASE_TARGETS.includes('external') ? 'external' : 'embedded'
  const db = await createTestDatabase(target)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sso-live-'))
  const apiKey = `sso_test_${randomBytes(18).toString('base64url')}`
  const config = loadConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    BOOTSTRAP_ADMIN_KEY: apiKey,
    IN_PROCESS_WORKER: 'true',
    EXECUTION_PROVIDER: 'cpu',
    DEMO_RESOURCES: String(demo),
    // The demo model is made below the models root: keep it inside this test's data folder.
    MODELS_ROOT: path.join(dataDir, 'models'),
  })
  const cleanUp = async () => {
    await db.drop()
    await stopEmbeddedServer()
    await rm(dataDir, { recursive: true, force: true })
  }
  let server: Awaited<ReturnType<typeof startServer>>
  try {
    server = await startServer(config)
  } catch (e) {
    await cleanUp()
    throw e
  }
  const address = server.app.server.address()
  if (!address || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`)
  const url = `http://127.0.0.1:${address.port}`
  return {
    url,
    apiKey,
    client: new ApiClient(url, apiKey),
    server,
    async stop() {
      await server.close()
      await cleanUp()
    },
  }
}
