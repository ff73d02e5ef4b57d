/**
 * What the trainer and the evaluation need from a policy: chat generation and response scoring. The
 * model layer's Policy is plugged in through a thin adapter (src/sso/model-adapter.ts).
 */

export interface ChatPrompt {
  /** System message; absent or '' for a plain query. */
  system?: string
  user: string
  /** Earlier turns as [user, assistant] pairs. */
  history?: [string, string][]
}

export interface SamplingOptions {
  maxNewTokens: number
  /** 0 = greedy. */
  temperature: number
  topP: number
  topK: number
  seed: number
}

export interface TextGenerator {
  generate(prompts: ChatPrompt[], options: SamplingOptions): Promise<string[]>
}
