/**
 * Dataset line formats (JSONL) with TypeBox schemas and line-numbered validation. The SSO record matches
 * the reference repository's `sso` dataset format; the service's dataset upload reuses these validators.
 */
import { readFile } from 'node:fs/promises'
import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'
import { AppError } from '../errors.ts'
import { writeFileAtomically } from '../model/atomic-folder.ts'

const Text = Type.String()
/** Earlier turns as [user, assistant] pairs. */
const HistorySchema = Type.Array(Type.Tuple([Type.String(), Type.String()]))

export const SsoRecordSchema = Type.Object({
  instruction: Type.String({ minLength: 1 }),
  system: Type.String({ default: '' }),
  p_system: Text,
  n_system: Text,
  chosen: Text,
  rejected: Text,
  raw: Text,
  history: Type.Optional(HistorySchema),
  principles: Type.Optional(Type.Array(Type.String())),
  /** The principle the policy wrote for this query (principle_source policy_written). */
  written_principle: Type.Optional(Type.Object({ good: Type.String(), bad: Type.String() })),
})
export type SsoRecord = Static<typeof SsoRecordSchema>

export const PreferencePairSchema = Type.Object({
  prompt: Type.String({ minLength: 1 }),
  system: Type.Optional(Type.String()),
  chosen: Text,
  rejected: Text,
})
export type PreferencePair = Static<typeof PreferencePairSchema>

export const SftPairSchema = Type.Object({
  prompt: Type.String({ minLength: 1 }),
  system: Type.Optional(Type.String()),
  response: Text,
})
export type SftPair = Static<typeof SftPairSchema>

export const QuerySchema = Type.Object({
  prompt: Type.String({ minLength: 1 }),
  /** Features of the principle set to use for this query (overrides the run's selection). */
  features: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
})
export type Query = Static<typeof QuerySchema>

export const DATASET_FORMATS = {
  sso_records: SsoRecordSchema,
  preference_pairs: PreferencePairSchema,
  sft_pairs: SftPairSchema,
  queries: QuerySchema,
} as const
export type DatasetFormat = keyof typeof DATASET_FORMATS
export type DatasetRow<F extends DatasetFormat> = Static<(typeof DATASET_FORMATS)[F]>

export interface LineError {
  /** 1-based line number in the file. */
  line: number
  message: string
}

export interface ParsedJsonl<T> {
  rows: T[]
  errors: LineError[]
}

/**
 * Parses JSONL text against a schema; defaults are filled in. Blank lines are skipped. Errors are
 * collected (up to `maxErrors`) rather than thrown so a caller can report them all at once.
 */
export function parseJsonl<S extends TSchema>(
  text: string,
  schema: S,
  maxErrors = 50,
): ParsedJsonl<Static<S>> {
  const rows: Static<S>[] = []
  const errors: LineError[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length && errors.length < maxErrors; i++) {
    const line = lines[i].trim()
    if (line === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      errors.push({ line: i + 1, message: `not valid JSON: ${(e as Error).message}` })
      continue
    }
    const withDefaults = Value.Default(schema, value)
    if (Value.Check(schema, withDefaults)) {
      rows.push(withDefaults as Static<S>)
    } else {
      const details = Value.Errors(schema, withDefaults)
        .slice(0, 3)
        .map((e) => `${e.instancePath || '/'} ${e.message}`)
      errors.push({ line: i + 1, message: details.join('; ') })
    }
  }
  return { rows, errors }
}

/** Validates one dataset text in a named format; the upload endpoint calls this. */
export function validateDataset<F extends DatasetFormat>(
  format: F,
  text: string,
): ParsedJsonl<DatasetRow<F>> {
  return parseJsonl(text, DATASET_FORMATS[format]) as ParsedJsonl<DatasetRow<F>>
}

/** Reads and validates JSONL files; throws `dataset_invalid` listing the first bad lines. */
export async function readDataset<F extends DatasetFormat>(
  format: F,
  paths: string[],
): Promise<DatasetRow<F>[]> {
  const rows: DatasetRow<F>[] = []
  for (const path of paths) {
    const parsed = validateDataset(format, await readFile(path, 'utf8'))
    if (parsed.errors.length > 0) {
      const shown = parsed.errors.slice(0, 5).map((e) => `line ${e.line}: ${e.message}`)
      throw new AppError('dataset_invalid', `${path} is not a valid ${format} file: ${shown.join(' | ')}`, {
        path,
        format,
        errors: parsed.errors,
      })
    }
    rows.push(...parsed.rows)
  }
  return rows
}

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length > 0 ? '\n' : '')
}

/** Writes JSONL atomically (temp file + rename) so a reader never sees half a file. */
export async function writeJsonl(path: string, rows: readonly unknown[]): Promise<void> {
  await writeFileAtomically(path, toJsonl(rows))
}

/** The preference pairs an SSO record implies for plain DPO (context x, chosen y+, rejected y-). */
export function recordToPreferencePair(r: SsoRecord): PreferencePair {
  return { prompt: r.instruction, system: r.system, chosen: r.chosen, rejected: r.rejected }
}
