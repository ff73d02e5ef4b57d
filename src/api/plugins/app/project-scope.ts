import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ALL_PROJECTS, DEFAULT_PROJECT_ID, type ProjectScope } from '../../../db/project-scope.ts'
import type { ProjectsRepository } from '../../../db/projects-repository.ts'
import { ValidationError } from '../../../errors.ts'
import type { ApiKeyDto } from '../../../schemas/api-keys.ts'

/** Header an admin key spanning every project sends to act in one (by id or name). */
export const PROJECT_HEADER = 'x-project'

declare module 'fastify' {
  interface FastifyRequest {
    /** Projects this request may see: its key's project, the one X-Project picks, or all. */
    projectScope: ProjectScope
  }
  interface FastifyInstance {
    /** The scope of a key, narrowed by an X-Project value when the key spans every project. */
    projectScopeOf(key: ApiKeyDto, picked: string | undefined): Promise<ProjectScope>
  }
}

/** The project a request creates resources in: its scope, or `default` for an unnarrowed admin key. */
export const targetProject = (request: FastifyRequest): string => request.projectScope ?? DEFAULT_PROJECT_ID

export const projectScopePlugin = fp(
  async (app: FastifyInstance, opts: { projects: ProjectsRepository }) => {
    app.decorate('projectScopeOf', async (key: ApiKeyDto, picked: string | undefined) => {
      if (picked === undefined || picked === '') return key.project_id
      // A project key may name its own project; naming another reads as an unknown one (no leak).
      const project = await opts.projects.find(picked, key.project_id ?? ALL_PROJECTS)
      if (!project)
        throw new ValidationError(`${PROJECT_HEADER}: no project '${picked}' that this API key can act in`)
      return project.id
    })
    app.decorateRequest('projectScope', ALL_PROJECTS)
    app.addHook('onRequest', async (request) => {
      if (!request.apiKey) return
      const picked = request.headers[PROJECT_HEADER]
      request.projectScope = await app.projectScopeOf(
        request.apiKey,
        typeof picked === 'string' ? picked : undefined,
      )
    })
  },
  { name: 'project-scope', dependencies: ['api-key-auth'] },
)
