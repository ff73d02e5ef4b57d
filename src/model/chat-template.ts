/**
 * Chat formatting with the model's own template (`chat_template` in tokenizer_config.json, or
 * `chat_template.jinja`), rendered by @huggingface/jinja as transformers' apply_chat_template does.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Template } from '@huggingface/jinja'
import { ModelLoadError } from '../errors.ts'
import { exists } from './weights.ts'

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja'

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

export class ChatTemplate {
  private readonly template: Template

  constructor(
    readonly source: string,
    private readonly specialTokens: Record<string, string | null>,
  ) {
    try {
      this.template = new Template(source)
    } catch (err) {
      throw new ModelLoadError(`the chat template does not parse: ${(err as Error).message}`, undefined, {
        cause: err,
      })
    }
  }

  /**
   * The conversation as the model's text. With addGenerationPrompt the text ends where the
   * assistant's reply begins.
   */
  render(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
    // As transformers: a role the tokenizer has no token for is left undefined (not ''), so a
    // template's `bos_token is defined` sees the truth. strftime_now and raise_exception are the
    // renderer's own globals, as in transformers.
    const tokens = Object.entries(this.specialTokens).filter(([, v]) => v !== null)
    return this.template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt,
      ...Object.fromEntries(tokens),
    })
  }

  /**
   * The template from a model folder: `chat_template.jinja` wins over tokenizer_config.json's
   * `chat_template` (transformers' order). A list of named templates uses the one named 'default'.
   */
  static async load(
    dir: string,
    tokenizerConfig: Record<string, unknown>,
    specialTokens: Record<string, string | null>,
  ): Promise<ChatTemplate | null> {
    const file = path.join(dir, CHAT_TEMPLATE_FILE)
    if (await exists(file)) return new ChatTemplate(await readFile(file, 'utf8'), specialTokens)
    const t = tokenizerConfig.chat_template
    if (typeof t === 'string') return new ChatTemplate(t, specialTokens)
    if (Array.isArray(t)) {
      const named = t.find((x: { name?: string }) => x?.name === 'default') as
        | { template?: string }
        | undefined
      if (typeof named?.template === 'string') return new ChatTemplate(named.template, specialTokens)
    }
    // Absent is fine (prompts are then formatted without a template); anything else is a mistake.
    if (t !== undefined && t !== null && !Array.isArray(t))
      throw new Error(
        `tokenizer_config.json: chat_template must be a string or a list of named templates, got ${JSON.stringify(t)}`,
      )
    return null
  }
}

/** The messages of a prompt: optional system message, earlier turns, then the user's message. */
export function chatMessages(prompt: {
  system?: string
  user: string
  history?: readonly (readonly [string, string])[]
}): ChatMessage[] {
  const messages: ChatMessage[] = []
  if (prompt.system) messages.push({ role: 'system', content: prompt.system })
  for (const [user, assistant] of prompt.history ?? []) {
    messages.push({ role: 'user', content: user }, { role: 'assistant', content: assistant })
  }
  messages.push({ role: 'user', content: prompt.user })
  return messages
}
