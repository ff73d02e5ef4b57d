/**
 * The `sso` command line: finds the command named by the first words of argv, parses its options,
 * runs it and turns its outcome into an exit code (0 ok, 1 failure, 2 usage error).
 */
// First: an old Node.js stops here, before the other modules load.
import './require-node.ts'
import { AppError } from '../errors.ts'
import { type Command, formatHelp, parseCommandArgs, UsageError } from './command.ts'
import { COMMANDS } from './commands/index.ts'
import { loadDotEnv } from './environment.ts'

function groupHelp(prefix: string[]): string {
  const matching = COMMANDS.filter((c) => prefix.every((w, i) => c.path[i] === w))
  const width = Math.max(...matching.map((c) => c.path.join(' ').length)) + 2
  const title = prefix.length === 0 ? 'sso: train language models with Self-Steering Optimization' : ''
  return [
    ...(title ? [title, ''] : []),
    `Usage: sso ${prefix.length ? `${prefix.join(' ')} ` : ''}<command> [options]`,
    '',
    'Commands:',
    ...matching.map((c) => `  ${c.path.join(' ').padEnd(width)}${c.summary}`),
    '',
    `Run 'sso <command> --help' for the options of a command.`,
    '',
  ].join('\n')
}

function findCommand(argv: string[]): { command?: Command; rest: string[]; prefix: string[] } {
  const words: string[] = []
  for (const a of argv) {
    if (a.startsWith('-')) break
    words.push(a)
  }
  let best: Command | undefined
  for (const c of COMMANDS) {
    if (c.path.every((w, i) => words[i] === w) && c.path.length > (best?.path.length ?? 0)) best = c
  }
  if (best) return { command: best, rest: argv.slice(best.path.length), prefix: best.path }
  const prefix = COMMANDS.some((c) => c.path[0] === words[0]) ? words.slice(0, 1) : []
  return { rest: argv, prefix }
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(groupHelp([]))
    return argv.length === 0 ? 2 : 0
  }
  if (argv[0] === 'help') return main([...argv.slice(1), '--help'])
  const { command, rest, prefix } = findCommand(argv)
  if (!command) {
    if (prefix.length > 0 && (rest.length === 1 || rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(groupHelp(prefix))
      return rest.length === 1 ? 2 : 0
    }
    const unknown = argv.slice(0, prefix.length + 1).join(' ')
    process.stderr.write(`sso: unknown command '${unknown}'\n\n${groupHelp(prefix)}`)
    return 2
  }
  const name = `sso ${command.path.join(' ')}`
  try {
    const ctx = parseCommandArgs(command, rest)
    if (ctx.values.help) {
      process.stdout.write(formatHelp(command))
      return 0
    }
    return (await command.run(ctx)) ?? 0
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${name}: ${e.message}\nRun '${name} --help' for usage.\n`)
      return 2
    }
    // Our errors, and the system's about files and folders (ENOENT, EACCES, …), say enough without a stack.
    if (e instanceof AppError || typeof (e as NodeJS.ErrnoException).syscall === 'string') {
      process.stderr.write(`${name}: ${(e as Error).message}\n`)
      return 1
    }
    process.stderr.write(`${name}: unexpected failure: ${(e as Error).stack ?? String(e)}\n`)
    return 1
  }
}

loadDotEnv()
// Long-running commands (serve, worker) resolve without a code and keep the process alive.
process.exitCode = await main(process.argv.slice(2))
