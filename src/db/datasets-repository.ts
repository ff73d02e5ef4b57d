import { randomUUID } from 'node:crypto'
import type { DatasetDto } from '../schemas/datasets.ts'
import type { DatasetFormat } from '../sso/records.ts'
import { type Db, Prisma } from './client.ts'
import { pageQuery, toPage } from './cursor.ts'
import { ALL_PROJECTS, inProject, type ProjectScope } from './project-scope.ts'
import { notifyResourceChange } from './resource-changes.ts'

const select = {
  id: true,
  name: true,
  format: true,
  contentHash: true,
  lineCount: true,
  bytes: true,
  path: true,
  createdAt: true,
} as const
type Row = {
  id: string
  name: string
  format: string
  contentHash: string
  lineCount: number
  bytes: number
  path: string
  createdAt: Date
}

export interface StoredDataset extends DatasetDto {
  /** File holding the JSONL, below DATA_DIR/datasets. */
  path: string
}

function toDto(r: Row): StoredDataset {
  return {
    id: r.id,
    name: r.name,
    format: r.format as DatasetFormat,
    content_hash: r.contentHash,
    line_count: r.lineCount,
    bytes: r.bytes,
    path: r.path,
    created_at: r.createdAt.toISOString(),
  }
}

/** Every write below announces itself: other API processes drop their cached datasets. */
const announce = (db: Db) => notifyResourceChange(db, { collection: 'datasets' })

export function createDatasetsRepository(db: Db) {
  return {
    async create(input: {
      name: string
      format: DatasetFormat
      contentHash: string
      lineCount: number
      bytes: number
      path: string
      projectId: string
    }) {
      const row = await db.dataset.create({ data: { id: randomUUID(), ...input }, select })
      await announce(db)
      return toDto(row)
    },
    async findById(id: string, scope: ProjectScope = ALL_PROJECTS): Promise<StoredDataset | null> {
      const row = await db.dataset.findUnique({ where: { id, ...inProject(scope) }, select })
      return row ? toDto(row) : null
    },
    /** The oldest dataset of that name in the scope's project (names need not be unique). */
    async findByName(name: string, scope: ProjectScope): Promise<StoredDataset | null> {
      const row = await db.dataset.findFirst({
        where: { name, ...inProject(scope) },
        orderBy: { createdAt: 'asc' },
        select,
      })
      return row ? toDto(row) : null
    },
    async findManyByIds(ids: string[], scope: ProjectScope = ALL_PROJECTS): Promise<StoredDataset[]> {
      const rows = await db.dataset.findMany({ where: { id: { in: ids }, ...inProject(scope) }, select })
      return rows.map(toDto)
    },
    async list(scope: ProjectScope, limit: number, cursor?: string) {
      const rows = await db.dataset.findMany({ ...pageQuery(limit, cursor, [inProject(scope)]), select })
      return toPage(rows, limit, toDto)
    },
    /**
     * Of `ids`, those that still exist, each locked until the transaction ends: FOR SHARE for a run
     * being created on them, FOR UPDATE for a delete. Either waits for the other, so a run is never
     * created on a dataset being deleted (runs list their datasets without a foreign key).
     */
    async lock(ids: string[], mode: 'share' | 'update'): Promise<string[]> {
      const lock = Prisma.raw(mode === 'share' ? 'FOR SHARE' : 'FOR UPDATE')
      const rows = await db.$queryRaw<
        { id: string }[]
      >`SELECT id::text FROM datasets WHERE id = ANY(${ids}::uuid[]) ${lock}`
      return rows.map((r) => r.id)
    },
    async delete(id: string): Promise<boolean> {
      const { count } = await db.dataset.deleteMany({ where: { id } })
      if (count === 0) return false
      await announce(db)
      return true
    },
  }
}
export type DatasetsRepository = ReturnType<typeof createDatasetsRepository>
