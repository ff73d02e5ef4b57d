/**
 * The command model of the `sso` CLI: each command declares its options once (node:util parseArgs
 * config plus a description), and its help text, argument parsing and usage errors derive from that.
 */
import { parseArgs } from 'node:util'
import { AppError } from '../errors.ts'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  default?: string | boolean
  /** Shown in --help; `arg` names the value (`--model <id>`). */
  description: string
  arg?: string
}

export type OptionSpecs = Record<string, OptionSpec>

export type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>

export interface CommandContext {
  values: ParsedValues
  positionals: string[]
}

export interface Command {
  /** Path words after `sso`, e.g. ['runs', 'create']. */
  path: string[]
  summary: string
  /** Positional arguments as shown in the usage line, e.g. '<run-id>'. */
  args?: string
  options: OptionSpecs
  /** Extra help paragraphs (examples). */
  details?: string
  run(ctx: CommandContext): Promise<number | undefined>
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends AppError {
  constructor(
    message: string,
    readonly command?: Command,
  ) {
    super('validation_failed', message)
  }
}

export const HELP_OPTION: OptionSpecs = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
}

export function parseCommandArgs(command: Command, argv: string[]): CommandContext {
  const options = { ...command.options, ...HELP_OPTION }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        // parseArgs rejects keys present with an undefined value, so only the defined ones are passed.
        Object.entries(options).map(([name, { description: _d, arg: _a, ...o }]) => [name, o]),
      ),
      allowPositionals: true,
      strict: true,
    })
    return { values: values as ParsedValues, positionals }
  } catch (e) {
    // parseArgs reports unknown options and missing values as TypeErrors with ERR_PARSE_ARGS_* codes.
    const code = (e as { code?: string }).code ?? ''
    if (code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message, command)
    throw e
  }
}

export function formatHelp(command: Command): string {
  const options = { ...command.options, ...HELP_OPTION }
  const usage = `sso ${command.path.join(' ')}${command.args ? ` ${command.args}` : ''} [options]`
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.arg ?? 'value'}>` : ''}`
    const extra = [o.multiple ? 'repeatable' : '', o.default !== undefined ? `default: ${o.default}` : '']
      .filter(Boolean)
      .join(', ')
    return [flag, `${o.description}${extra ? ` (${extra})` : ''}`] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length)) + 2
  const lines = [
    `${command.summary}`,
    '',
    `Usage: ${usage}`,
    '',
    'Options:',
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
  ]
  if (command.details) lines.push('', command.details.trim())
  return `${lines.join('\n')}\n`
}

/** The value of a string option, or a usage error naming the option when it is required and missing. */
export function stringOption(ctx: CommandContext, name: string, command: Command): string
export function stringOption(
  ctx: CommandContext,
  name: string,
  command: Command,
  required: false,
): string | undefined
export function stringOption(
  ctx: CommandContext,
  name: string,
  command: Command,
  required = true,
): string | undefined {
  const v = ctx.values[name]
  if (typeof v === 'string' && v !== '') return v
  if (required) throw new UsageError(`--${name} is required`, command)
  return undefined
}

export function listOption(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name]
  return Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []
}

export function integerOption(ctx: CommandContext, name: string, command: Command): number | undefined {
  const v = ctx.values[name]
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be an integer, got '${v}'`, command)
  return n
}

/** Exactly `count` positionals (named in the message), or a usage error. */
export function positionalArgs(ctx: CommandContext, command: Command, names: string[]): string[] {
  if (ctx.positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(ctx.positionals.length).join(', ')}`, command)
  }
  if (ctx.positionals.length > names.length) {
    throw new UsageError(`unexpected argument '${ctx.positionals[names.length]}'`, command)
  }
  return ctx.positionals
}
