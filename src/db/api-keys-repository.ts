import { randomUUID } from 'node:crypto'
import type { ApiKeyDto, Scope } from '../schemas/api-keys.ts'
import type { Db } from './client.ts'
import { inProject, type ProjectScope } from './project-scope.ts'

const select = {
  id: true,
  name: true,
  prefix: true,
  scopes: true,
  projectId: true,
  createdAt: true,
  lastUsedAt: true,
  revokedAt: true,
} as const

type Row = {
  id: string
  name: string
  prefix: string
  scopes: string[]
  projectId: string | null
  createdAt: Date
  lastUsedAt: Date | null
  revokedAt: Date | null
}

function toDto(r: Row): ApiKeyDto {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes as Scope[],
    project_id: r.projectId,
    created_at: r.createdAt.toISOString(),
    last_used_at: r.lastUsedAt?.toISOString() ?? null,
    revoked_at: r.revokedAt?.toISOString() ?? null,
  }
}

export function createApiKeysRepository(db: Db) {
  return {
    async create(input: {
      name: string
      prefix: string
      hash: string
      scopes: Scope[]
      projectId: string | null
    }): Promise<ApiKeyDto> {
      return toDto(await db.apiKey.create({ data: { id: randomUUID(), ...input }, select }))
    },
    async findActiveByHash(hash: string): Promise<ApiKeyDto | null> {
      const row = await db.apiKey.findFirst({ where: { hash, revokedAt: null }, select })
      return row ? toDto(row) : null
    },
    async count(): Promise<number> {
      return db.apiKey.count()
    },
    async list(scope: ProjectScope): Promise<ApiKeyDto[]> {
      const rows = await db.apiKey.findMany({
        where: inProject(scope),
        orderBy: { createdAt: 'desc' },
        select,
      })
      return rows.map(toDto)
    },
    async revoke(id: string, scope: ProjectScope): Promise<boolean> {
      const { count } = await db.apiKey.updateMany({
        where: { id, revokedAt: null, ...inProject(scope) },
        data: { revokedAt: new Date() },
      })
      return count === 1
    },
    async touch(id: string): Promise<void> {
      await db.apiKey.update({ where: { id }, data: { lastUsedAt: new Date() }, select: { id: true } })
    },
  }
}
export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>
