/**
 * How one server of the OpenAI family is reached and what it deviates in. OpenAI, OpenRouter, GLM
 * and any OpenAI-compatible server (vLLM, Ollama, LM Studio) speak Chat Completions through the same
 * adapter; a `Config` names the provider, its default base URL and headers, and the quirks the
 * adapter must respect for it. `openAi` is OpenAI's own; the other providers derive theirs from it.
 */

/** How an upstream error code the HTTP status does not explain is classified (see `map-error.ts`). */
export type ErrorKind =
  | "rate_limited"
  | "quota_exhausted"
  | "unauthorized"
  | "content_filtered"
  | "context_too_long"
  | "bad_request"
  | "overloaded"

/** What a server of the family does differently from OpenAI. */
export interface Quirks {
  /**
   * Send `stream_options: { include_usage: true }` on streamed calls. OpenAI reports streamed usage
   * only when asked; servers that always put usage in their last chunk, or reject unknown
   * parameters, do without.
   */
  readonly streamOptions: boolean
  /** The body field of the token limit: OpenAI's `max_completion_tokens` or the older `max_tokens`. */
  readonly maxTokensParam: "max_completion_tokens" | "max_tokens"
  /**
   * `"any"`: `tool_choice` may be `auto`, `required` or a named function. `"auto"`: the
   * server only knows `auto`; `required` and a named tool are then sent as `auto` over the allowed
   * tools (the model is asked, not forced). `none` is always sent as no tools at all.
   */
  readonly toolChoice: "any" | "auto"
  /** How `generateObject` asks for JSON: a strict JSON Schema, or JSON mode without a schema. */
  readonly structuredOutput: "json_schema" | "json_object"
  /** The highest `temperature` the server accepts; higher values are clamped to it. */
  readonly maxTemperature: number
  /** Whether the end-user id of `CallOptions.user` is sent as `user`. */
  readonly sendUser: boolean
  /** Vendor error codes (`error.code` in the body) that say more than the HTTP status. */
  readonly errorCodes: Readonly<Record<string, ErrorKind>>
  /** The cheap authenticated `GET` of the health probe, relative to the base URL. */
  readonly probePath: string
}

/** A server of the OpenAI family. */
export interface Config {
  /** The provider name errors and `Provider.name` carry: `openai`, `openrouter`, `glm`, … */
  readonly name: string
  /** The base URL used when the settings give none (ends before `/chat/completions`). */
  readonly defaultBaseUrl: string
  /** Headers sent with every request (app attribution, API versions). */
  readonly headers: Readonly<Record<string, string>>
  readonly quirks: Quirks
}

/** OpenAI's own quirks: none, by definition. */
export const openAiQuirks: Quirks = {
  streamOptions: true,
  maxTokensParam: "max_completion_tokens",
  toolChoice: "any",
  structuredOutput: "json_schema",
  maxTemperature: 2,
  sendUser: true,
  errorCodes: {
    insufficient_quota: "quota_exhausted",
    rate_limit_exceeded: "rate_limited",
    context_length_exceeded: "context_too_long",
    string_above_max_length: "context_too_long",
    content_filter: "content_filtered",
    content_policy_violation: "content_filtered",
    invalid_api_key: "unauthorized",
    engine_overloaded: "overloaded"
  },
  probePath: "/models"
}

/** OpenAI's public API. */
export const openAi: Config = {
  name: "openai",
  defaultBaseUrl: "https://api.openai.com/v1",
  headers: {},
  quirks: openAiQuirks
}

/** A config derived from `base`: the fields of `overrides` replace, quirks and headers merge. */
export const derive = (
  base: Config,
  overrides: {
    readonly name?: string | undefined
    readonly defaultBaseUrl?: string | undefined
    readonly headers?: Readonly<Record<string, string>> | undefined
    readonly quirks?: Partial<Quirks> | undefined
  }
): Config => ({
  name: overrides.name ?? base.name,
  defaultBaseUrl: overrides.defaultBaseUrl ?? base.defaultBaseUrl,
  headers: { ...base.headers, ...overrides.headers },
  quirks: {
    ...base.quirks,
    ...overrides.quirks,
    errorCodes: { ...base.quirks.errorCodes, ...overrides.quirks?.errorCodes }
  }
})
