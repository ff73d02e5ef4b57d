import { randomUUID } from 'node:crypto'
import type { PrincipleDto, PrincipleSet } from '../schemas/principle-sets.ts'
import { type Db, Prisma } from './client.ts'
import { pageQuery, toPage } from './cursor.ts'
import { ALL_PROJECTS, inProject, type ProjectScope } from './project-scope.ts'
import { notifyResourceChange } from './resource-changes.ts'

const versionSelect = { id: true, version: true, principles: true, concision: true, lockedAt: true } as const
const select = {
  id: true,
  name: true,
  description: true,
  createdAt: true,
  updatedAt: true,
  versions: { select: versionSelect, orderBy: { version: 'desc' }, take: 1 },
} as const

type VersionRow = {
  id: string
  version: number
  principles: Prisma.JsonValue
  concision: Prisma.JsonValue
  lockedAt: Date | null
}
type Row = {
  id: string
  name: string
  description: string
  createdAt: Date
  updatedAt: Date
  versions: VersionRow[]
}

export interface PrincipleContent {
  principles: PrincipleDto[]
  concision: PrincipleDto | null
}

export interface PrincipleSetVersionDto extends PrincipleContent {
  id: string
  set_id: string
  name: string
  version: number
  locked: boolean
}

function toDto(r: Row): PrincipleSet {
  const v = r.versions[0]
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    version: v.version,
    version_id: v.id,
    locked: v.lockedAt !== null,
    principles: v.principles as PrincipleDto[],
    concision: (v.concision as PrincipleDto | null) ?? null,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  }
}

/** Every write below announces itself: other API processes drop their cached principle sets. */
const announce = (db: Db) => notifyResourceChange(db, { collection: 'principle_sets' })

function content(c: PrincipleContent) {
  return {
    principles: c.principles as unknown as Prisma.InputJsonValue,
    concision: (c.concision ?? undefined) as Prisma.InputJsonValue | undefined,
  }
}

export function createPrincipleSetsRepository(db: Db) {
  return {
    async create(
      input: { name: string; description: string; projectId: string } & PrincipleContent,
    ): Promise<PrincipleSet> {
      const row = await db.principleSet.create({
        data: {
          id: randomUUID(),
          projectId: input.projectId,
          name: input.name,
          description: input.description,
          versions: { create: { id: randomUUID(), version: 1, ...content(input) } },
        },
        select,
      })
      await announce(db)
      return toDto(row)
    },
    async findById(id: string, scope: ProjectScope = ALL_PROJECTS): Promise<PrincipleSet | null> {
      const row = await db.principleSet.findUnique({ where: { id, ...inProject(scope) }, select })
      return row && row.versions.length > 0 ? toDto(row) : null
    },
    /** The oldest set of that name in the scope's project (names need not be unique). */
    async findByName(name: string, scope: ProjectScope): Promise<PrincipleSet | null> {
      const row = await db.principleSet.findFirst({
        where: { name, ...inProject(scope) },
        orderBy: { createdAt: 'asc' },
        select,
      })
      return row && row.versions.length > 0 ? toDto(row) : null
    },
    /** A given version, or the latest when `version` is undefined. */
    async findVersion(
      setId: string,
      version?: number,
      scope: ProjectScope = ALL_PROJECTS,
    ): Promise<PrincipleSetVersionDto | null> {
      const row = await db.principleSetVersion.findFirst({
        where: { setId, set: inProject(scope), ...(version === undefined ? {} : { version }) },
        orderBy: { version: 'desc' },
        select: { ...versionSelect, set: { select: { id: true, name: true } } },
      })
      // The set is read in a second query: a concurrent delete can leave the version without it.
      if (!row?.set) return null
      return {
        id: row.id,
        set_id: row.set.id,
        name: row.set.name,
        version: row.version,
        locked: row.lockedAt !== null,
        principles: row.principles as PrincipleDto[],
        concision: (row.concision as PrincipleDto | null) ?? null,
      }
    },
    async findVersionById(versionId: string): Promise<PrincipleSetVersionDto | null> {
      const row = await db.principleSetVersion.findUnique({
        where: { id: versionId },
        select: { setId: true, version: true },
      })
      return row ? this.findVersion(row.setId, row.version) : null
    },
    async list(scope: ProjectScope, limit: number, cursor?: string) {
      const rows = await db.principleSet.findMany({ ...pageQuery(limit, cursor, [inProject(scope)]), select })
      return toPage(rows, limit, toDto)
    },
    async update(id: string, data: { name?: string; description?: string }): Promise<void> {
      await db.principleSet.update({
        where: { id },
        data: { ...data, updatedAt: new Date() },
        select: { id: true },
      })
      await announce(db)
    },
    /** Replaces a version's content only while no run uses it; false when it is locked. */
    async updateUnlockedVersion(versionId: string, c: PrincipleContent): Promise<boolean> {
      const { count } = await db.principleSetVersion.updateMany({
        where: { id: versionId, lockedAt: null },
        data: {
          principles: content(c).principles,
          concision: (c.concision as unknown as Prisma.InputJsonValue) ?? Prisma.DbNull,
        },
      })
      if (count === 0) return false
      await announce(db)
      return true
    },
    async createVersion(setId: string, version: number, c: PrincipleContent): Promise<void> {
      await db.principleSetVersion.create({
        data: { id: randomUUID(), setId, version, ...content(c) },
        select: { id: true },
      })
      await announce(db)
    },
    async lockVersion(versionId: string): Promise<void> {
      const { count } = await db.principleSetVersion.updateMany({
        where: { id: versionId, lockedAt: null },
        data: { lockedAt: new Date() },
      })
      if (count > 0) await announce(db)
    },
    async countRuns(setId: string): Promise<number> {
      return db.run.count({ where: { principleSetVersion: { setId } } })
    },
    async delete(id: string): Promise<boolean> {
      const { count } = await db.principleSet.deleteMany({ where: { id } })
      if (count === 0) return false
      await announce(db)
      return true
    },
  }
}
export type PrincipleSetsRepository = ReturnType<typeof createPrincipleSetsRepository>
