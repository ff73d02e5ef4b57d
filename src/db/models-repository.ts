import { randomUUID } from 'node:crypto'
import type { ModelDto, ModelKind } from '../schemas/models.ts'
import type { Db, Prisma } from './client.ts'
import { pageQuery, toPage } from './cursor.ts'
import { ALL_PROJECTS, inProjectOrShared, type ProjectScope } from './project-scope.ts'
import { notifyResourceChange } from './resource-changes.ts'

const select = {
  id: true,
  name: true,
  kind: true,
  path: true,
  config: true,
  recommendedHyperparameters: true,
  createdAt: true,
} as const
type Row = {
  id: string
  name: string
  kind: string
  path: string
  config: Prisma.JsonValue
  recommendedHyperparameters: Prisma.JsonValue
  createdAt: Date
}

function toDto(r: Row): ModelDto {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as ModelKind,
    path: r.path,
    config: (r.config as Record<string, unknown> | null) ?? null,
    ...(r.recommendedHyperparameters !== null
      ? {
          recommended_hyperparameters:
            r.recommendedHyperparameters as ModelDto['recommended_hyperparameters'],
        }
      : {}),
    created_at: r.createdAt.toISOString(),
  }
}

/** Every write below announces itself: other API processes drop their cached models. */
const announce = (db: Db) => notifyResourceChange(db, { collection: 'models' })

export function createModelsRepository(db: Db) {
  return {
    async create(input: {
      name: string
      kind: ModelKind
      path: string
      config?: Record<string, unknown>
      recommendedHyperparameters?: Record<string, unknown>
      /** Null only for the built-in model, shared by every project. */
      projectId: string | null
    }): Promise<ModelDto> {
      const data = {
        id: randomUUID(),
        ...input,
        config: (input.config ?? undefined) as Prisma.InputJsonValue | undefined,
        recommendedHyperparameters: input.recommendedHyperparameters as Prisma.InputJsonValue | undefined,
      }
      const row = await db.model.create({ data, select })
      await announce(db)
      return toDto(row)
    },
    /** A model of the scope's project or a shared one. */
    async findById(id: string, scope: ProjectScope = ALL_PROJECTS): Promise<ModelDto | null> {
      const row = await db.model.findUnique({ where: { id, ...inProjectOrShared(scope) }, select })
      return row ? toDto(row) : null
    },
    async findByName(name: string): Promise<ModelDto | null> {
      const row = await db.model.findUnique({ where: { name }, select })
      return row ? toDto(row) : null
    },
    async list(scope: ProjectScope, limit: number, cursor?: string) {
      const rows = await db.model.findMany({
        ...pageQuery(limit, cursor, [inProjectOrShared(scope)]),
        select,
      })
      return toPage(rows, limit, toDto)
    },
    async delete(id: string): Promise<boolean> {
      const { count } = await db.model.deleteMany({ where: { id } })
      if (count === 0) return false
      await announce(db)
      return true
    },
  }
}
export type ModelsRepository = ReturnType<typeof createModelsRepository>
