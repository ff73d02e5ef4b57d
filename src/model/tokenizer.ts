/**
 * A model's tokenizer from its `tokenizer.json` (+ `tokenizer_config.json`), through
 * @huggingface/tokenizers. Adds what generation needs: special-token ids and the ids that end a turn.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { ModelLoadError } from '../errors.ts'
import { isJsonObject } from '../json-object.ts'

export const TOKENIZER_FILE = 'tokenizer.json'
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json'

/** A special token in tokenizer_config.json: a string or an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content
  }
  return null
}

/** The special-token roles of tokenizer_config.json that transformers hands to chat templates. */
export const SPECIAL_TOKEN_ROLES = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const
export type SpecialTokenRole = (typeof SPECIAL_TOKEN_ROLES)[number]

export class TextTokenizer {
  private readonly tokenizer: Tokenizer
  /** Token strings by role, as tokenizer_config.json names them; null where the model has none. */
  readonly specialTokens: Readonly<Record<SpecialTokenRole, string | null>>
  readonly eosTokenId: number | null
  readonly padTokenId: number | null
  readonly bosTokenId: number | null
  /** Ids of all special (added) tokens: never part of generated text. */
  readonly specialIds: ReadonlySet<number>
  readonly size: number

  constructor(
    readonly tokenizerJson: Record<string, unknown>,
    readonly tokenizerConfig: Record<string, unknown>,
  ) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig)
    this.specialTokens = Object.fromEntries(
      SPECIAL_TOKEN_ROLES.map((role) => [role, tokenContent(tokenizerConfig[role])]),
    ) as Record<SpecialTokenRole, string | null>
    const id = (t: string | null) => (t === null ? null : (this.tokenizer.token_to_id(t) ?? null))
    this.eosTokenId = id(this.specialTokens.eos_token)
    this.bosTokenId = id(this.specialTokens.bos_token)
    this.padTokenId = id(this.specialTokens.pad_token) ?? this.eosTokenId
    const added = (tokenizerJson.added_tokens as { id: number; special?: boolean }[] | undefined) ?? []
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id))
    this.size = this.tokenizer.get_vocab(true).size
  }

  static async load(dir: string): Promise<TextTokenizer> {
    const json = await readJson(path.join(dir, TOKENIZER_FILE))
    let config: Record<string, unknown> = {}
    try {
      config = await readJson(path.join(dir, TOKENIZER_CONFIG_FILE))
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw err
    }
    try {
      return new TextTokenizer(json, config)
    } catch (err) {
      throw new ModelLoadError(
        `${path.join(dir, TOKENIZER_FILE)}: cannot build the tokenizer: ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      )
    }
  }

  /**
   * Token ids of text. Special tokens written in the text (e.g. `<|im_start|>`) map to their ids.
   * addSpecialTokens runs the tokenizer's post-processor (Llama 3's adds `<|begin_of_text|>`, Qwen's
   * adds nothing), as transformers' `tokenizer(text)` does by default; a rendered chat template
   * already holds its special tokens, so it is encoded without.
   */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    // A response may end at once (stop token first): the tokenizer library refuses an empty list.
    if (ids.length === 0) return ''
    return this.tokenizer.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? true })
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token)
  }
}

export async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ModelLoadError(`cannot read ${file}: ${(err as Error).message}`, undefined, { cause: err })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ModelLoadError(`${file}: not valid JSON (${(err as Error).message})`, undefined, { cause: err })
  }
  if (!isJsonObject(value)) throw new ModelLoadError(`${file}: not a JSON object`)
  return value
}
