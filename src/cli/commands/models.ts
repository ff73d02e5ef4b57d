/** `sso models list|register`: the models runs train; a succeeded run's result registered to train further. */
import type { ModelDto } from '../../schemas/models.ts'
import { API_OPTIONS, clientFor, printListing, wantsJson } from '../api-options.ts'
import { type Command, positionalArgs, stringOption, UsageError } from '../command.ts'
import { printJson } from '../output.ts'
import { resolveId } from '../resource-ids.ts'

export const modelsList: Command = {
  path: ['models', 'list'],
  summary: 'list the models runs can train',
  options: { ...API_OPTIONS },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const page = await clientFor(ctx).get<{ items: ModelDto[] }>('/v1/models', { limit: 200 })
    printListing(ctx, page, page.items, ['id', 'name', 'kind', 'path'])
    return 0
  },
}

export const modelsRegister: Command = {
  path: ['models', 'register'],
  summary: 'register a model folder below MODELS_ROOT, or the final model of a succeeded run',
  args: '<name>',
  options: {
    path: { type: 'string', arg: 'folder', description: 'a Hugging Face folder relative to MODELS_ROOT' },
    run: { type: 'string', arg: 'run-id', description: 'a succeeded run whose final model to register' },
    ...API_OPTIONS,
  },
  details: 'Example: sso models register tiny-sft --run 3f2c…  (then: sso runs create --model tiny-sft)',
  async run(ctx) {
    const [name] = positionalArgs(ctx, this, ['<name>'])
    const folder = stringOption(ctx, 'path', this, false)
    const runId = stringOption(ctx, 'run', this, false)
    if ((folder === undefined) === (runId === undefined)) throw new UsageError('give --path or --run', this)
    const client = clientFor(ctx)
    const body = folder ? { name, path: folder } : { name, run_id: await resolveId(client, 'runs', runId!) }
    // A refused --path names the service's MODELS_ROOT in its detail.
    const model = await client.post<ModelDto>('/v1/models', body)
    if (wantsJson(ctx)) printJson(model)
    else process.stdout.write(`registered model ${model.name} (${model.id}) at ${model.path}\n`)
    return 0
  },
}
