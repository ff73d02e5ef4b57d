import { randomUUID } from 'node:crypto'
import type { ProjectDto } from '../schemas/projects.ts'
import type { Db } from './client.ts'
import { inProject, type ProjectScope } from './project-scope.ts'

const select = { id: true, name: true, createdAt: true } as const

function toDto(r: { id: string; name: string; createdAt: Date }): ProjectDto {
  return { id: r.id, name: r.name, created_at: r.createdAt.toISOString() }
}

/** Projects by id, or by name (keys and the CLI may name a project either way). */
const byIdOrName = (idOrName: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrName)
    ? { id: idOrName }
    : { name: idOrName }

export function createProjectsRepository(db: Db) {
  return {
    async create(name: string): Promise<ProjectDto> {
      return toDto(await db.project.create({ data: { id: randomUUID(), name }, select }))
    },
    async find(idOrName: string, scope: ProjectScope): Promise<ProjectDto | null> {
      const row = await db.project.findFirst({
        where: { AND: [byIdOrName(idOrName), scope === null ? {} : { id: scope }] },
        select,
      })
      return row ? toDto(row) : null
    },
    async list(scope: ProjectScope): Promise<ProjectDto[]> {
      const rows = await db.project.findMany({
        where: scope === null ? {} : { id: scope },
        orderBy: { createdAt: 'asc' },
        select,
      })
      return rows.map(toDto)
    },
    /** How many resources the project holds; a project is deleted only when this is 0. */
    async countResources(id: string): Promise<number> {
      const where = inProject(id)
      const counts = await Promise.all([
        db.run.count({ where }),
        db.dataset.count({ where }),
        db.principleSet.count({ where }),
        db.model.count({ where }),
      ])
      return counts.reduce((a, b) => a + b, 0)
    },
    /** Deletes the project and its keys; false when it does not exist. */
    async delete(id: string): Promise<boolean> {
      const { count } = await db.project.deleteMany({ where: { id } })
      return count === 1
    },
  }
}
export type ProjectsRepository = ReturnType<typeof createProjectsRepository>
