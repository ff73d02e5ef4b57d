/**
 * Evaluation families written outside this code base, loaded from a folder with one sub-folder per
 * family (the sub-folder's name is the family's name):
 *
 *   <dir>/<family>/prompts.jsonl   one {"prompt": string, "split": "validation" | "test"} per line
 *   <dir>/<family>/checker.{ts,mjs,js}   exports check(prompt: string, response: string): number in [0, 1]
 *
 * See docs/benchmark.md.
 */
import { access, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ValidationError } from '../errors.ts'
import type { EvalItem } from './run-eval.ts'
import type { Checker, EvalSplit } from './task-family.ts'

export interface ExternalFamily extends Checker {
  items: Record<EvalSplit, EvalItem[]>
}

const CHECKER_FILES = ['checker.ts', 'checker.mjs', 'checker.js']

async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const path = join(dir, name)
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path
  }
  return undefined
}

function parsePrompts(name: string, text: string): Record<EvalSplit, EvalItem[]> {
  const items: Record<EvalSplit, EvalItem[]> = { validation: [], test: [] }
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    const where = `${name}/prompts.jsonl line ${i + 1}`
    let row: { prompt?: unknown; split?: unknown }
    try {
      row = JSON.parse(line)
    } catch {
      throw new ValidationError(`${where} is not JSON`, { family: name, line: i + 1 })
    }
    if (typeof row.prompt !== 'string' || row.prompt.trim() === '')
      throw new ValidationError(`${where}: 'prompt' must be a non-empty string`, {
        family: name,
        line: i + 1,
      })
    if (row.split !== 'validation' && row.split !== 'test')
      throw new ValidationError(`${where}: 'split' must be 'validation' or 'test'`, {
        family: name,
        line: i + 1,
      })
    items[row.split].push({ family: name, prompt: row.prompt })
  }
  return items
}

async function loadFamily(dir: string, name: string): Promise<ExternalFamily> {
  const folder = join(dir, name)
  const checkerPath = await firstExisting(folder, CHECKER_FILES)
  if (!checkerPath)
    throw new ValidationError(`family '${name}' has no ${CHECKER_FILES.join(' / ')}`, { family: name })
  const module = (await import(pathToFileURL(checkerPath).href)) as { check?: unknown }
  const check = module.check
  if (typeof check !== 'function')
    throw new ValidationError(`${checkerPath} does not export a function 'check'`, { family: name })
  const items = parsePrompts(name, await readFile(join(folder, 'prompts.jsonl'), 'utf8'))
  return {
    name,
    items,
    check(prompt, response) {
      const score = check(prompt, response)
      if (typeof score !== 'number' || !(score >= 0 && score <= 1))
        throw new ValidationError(`checker of '${name}' returned ${String(score)}, not a number in [0, 1]`, {
          family: name,
          prompt,
        })
      return score
    },
  }
}

/** Every family in the folder, in name order. */
export async function loadExternalFamilies(dir: string): Promise<ExternalFamily[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
  if (names.length === 0) throw new ValidationError(`no family folders in ${dir}`, { dir })
  return Promise.all(names.map((name) => loadFamily(dir, name)))
}
