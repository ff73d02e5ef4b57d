/**
 * `sso whoami`, `sso projects list|create`, `sso keys create`: where the key acts, and the projects
 * and keys of the service. With --project an admin key spanning every project acts in that one.
 */
import type { ApiKeyDto } from '../../schemas/api-keys.ts'
import type { ProjectDto, WhoAmI } from '../../schemas/projects.ts'
import { API_OPTIONS, clientFor, printListing, wantsJson } from '../api-options.ts'
import { type Command, listOption, positionalArgs, stringOption } from '../command.ts'
import { printJson } from '../output.ts'

/** How a key's reach reads in one line. */
export const describeProject = (project: ProjectDto | null) =>
  project ? `project ${project.name} (${project.id})` : 'every project (admin key without a project)'

export const whoami: Command = {
  path: ['whoami'],
  summary: 'show the API key in use and the project it acts in',
  options: { ...API_OPTIONS },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const me = await clientFor(ctx).get<WhoAmI>('/v1/whoami')
    if (wantsJson(ctx)) printJson(me)
    else
      process.stdout.write(
        `key ${me.key.name} (${me.key.prefix}…, scopes ${me.key.scopes.join(',')})\n${describeProject(me.project)}\n`,
      )
    return 0
  },
}

export const projectsList: Command = {
  path: ['projects', 'list'],
  summary: 'list the projects this key can act in',
  options: { ...API_OPTIONS },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const answer = await clientFor(ctx).get<{ items: ProjectDto[] }>('/v1/projects')
    printListing(ctx, answer, answer.items, ['id', 'name', 'created_at'])
    return 0
  },
}

export const projectsCreate: Command = {
  path: ['projects', 'create'],
  summary: 'create a project (admin key spanning every project)',
  args: '<name>',
  options: { ...API_OPTIONS },
  details: 'Then issue it a key: sso keys create --name ci --scopes write --project <name>',
  async run(ctx) {
    const [name] = positionalArgs(ctx, this, ['<name>'])
    const project = await clientFor(ctx).post<ProjectDto>('/v1/projects', { name })
    if (wantsJson(ctx)) printJson(project)
    else process.stdout.write(`created project ${project.name} (${project.id})\n`)
    return 0
  },
}

export const keysCreate: Command = {
  path: ['keys', 'create'],
  summary: 'issue an API key for a project (admin key)',
  options: {
    name: { type: 'string', arg: 'name', description: 'name of the new key' },
    scopes: {
      type: 'string',
      arg: 'scope',
      multiple: true,
      description: 'read, write or admin (repeatable; default write)',
    },
    ...API_OPTIONS,
  },
  details: `--project names the key's project. Without it the key acts in the caller's project; a caller
spanning every project issues an admin key that spans them too, and any other key for 'default'.
Prints the key alone on stdout (it is not shown again).`,
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const scopes = listOption(ctx, 'scopes').flatMap((s) => s.split(','))
    const created = await clientFor(ctx).post<ApiKeyDto & { key: string }>('/v1/api-keys', {
      name: stringOption(ctx, 'name', this),
      scopes: scopes.length > 0 ? scopes : ['write'],
      project_id: stringOption(ctx, 'project', this, false),
    })
    if (wantsJson(ctx)) printJson(created)
    else {
      process.stderr.write(
        `created API key '${created.name}' (id ${created.id}, project ${created.project_id ?? 'all'}):\n`,
      )
      process.stdout.write(`${created.key}\n`)
    }
    return 0
  },
}
