/** `sso datasets import|export|list`: JSONL datasets on the service. */
import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { DATASET_FORMATS } from '../../sso/records.ts'
import { API_OPTIONS, clientFor, printListing, wantsJson } from '../api-options.ts'
import { type Command, positionalArgs, stringOption, UsageError } from '../command.ts'
import { printJson } from '../output.ts'
import { resolveId } from '../resource-ids.ts'

const FORMATS = Object.keys(DATASET_FORMATS)

interface DatasetLike {
  id: string
  name?: string
  format?: string
  [key: string]: unknown
}

export const datasetsImport: Command = {
  path: ['datasets', 'import'],
  summary: 'upload a JSONL dataset (validated line by line by the service)',
  args: '<file.jsonl>',
  options: {
    format: { type: 'string', arg: 'format', description: `one of ${FORMATS.join(', ')}` },
    name: { type: 'string', arg: 'name', description: 'dataset name (default: the file name)' },
    ...API_OPTIONS,
  },
  details: 'Example: sso datasets import queries.jsonl --format queries',
  async run(ctx) {
    const [file] = positionalArgs(ctx, this, ['<file.jsonl>'])
    const format = stringOption(ctx, 'format', this)
    if (!FORMATS.includes(format))
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got '${format}'`, this)
    let content: string
    try {
      content = await readFile(file, 'utf8')
    } catch (e) {
      throw new UsageError(`cannot read '${file}': ${(e as Error).message}`, this)
    }
    const name = stringOption(ctx, 'name', this, false) ?? basename(file).replace(/\.jsonl?$/, '')
    const dataset = await clientFor(ctx).json<DatasetLike>('POST', '/v1/datasets', {
      query: { name, format },
      text: content,
    })
    if (wantsJson(ctx)) printJson(dataset)
    else process.stdout.write(`imported dataset ${dataset.id} (${name}, ${format})\n`)
    return 0
  },
}

export const datasetsExport: Command = {
  path: ['datasets', 'export'],
  summary: 'download a dataset as JSONL',
  args: '<dataset-id>',
  options: {
    output: { type: 'string', short: 'o', arg: 'file', description: 'write to a file instead of stdout' },
    ...API_OPTIONS,
  },
  async run(ctx) {
    const [given] = positionalArgs(ctx, this, ['<dataset-id>'])
    const client = clientFor(ctx)
    const id = await resolveId(client, 'datasets', given)
    const response = await client.fetch('GET', `/v1/datasets/${encodeURIComponent(id)}/content`)
    const text = await response.text()
    const output = stringOption(ctx, 'output', this, false)
    if (output) {
      await writeFile(output, text)
      process.stderr.write(`wrote ${output}\n`)
    } else {
      process.stdout.write(text)
    }
    return 0
  },
}

export const datasetsList: Command = {
  path: ['datasets', 'list'],
  summary: 'list datasets',
  options: { ...API_OPTIONS },
  async run(ctx) {
    positionalArgs(ctx, this, [])
    const page = await clientFor(ctx).get<{ items: DatasetLike[] }>('/v1/datasets', { limit: 200 })
    printListing(ctx, page, page.items, ['id', 'name', 'format', 'line_count', 'created_at'])
    return 0
  },
}
