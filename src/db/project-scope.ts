/**
 * Which projects a query may see: one project's id, or ALL_PROJECTS for an admin key that spans
 * every project (and for the worker, which trains runs of every project).
 */
export type ProjectScope = string | null
export const ALL_PROJECTS: ProjectScope = null

/** The project existing rows moved to and resources of an all-projects key land in by default. */
export const DEFAULT_PROJECT_ID = '00000000-0000-4000-8000-000000000001'

/** Prisma `where` fragment for rows of the scope's project. */
export const inProject = (scope: ProjectScope) => (scope === ALL_PROJECTS ? {} : { projectId: scope })

/** Like inProject, plus the shared rows (no project: the built-in model) every project sees. */
export const inProjectOrShared = (scope: ProjectScope) =>
  scope === ALL_PROJECTS ? {} : { OR: [{ projectId: scope }, { projectId: null }] }
