/**
 * Any server that speaks OpenAI's Chat Completions: vLLM, Ollama (`http://localhost:11434/v1`), LM
 * Studio (`http://localhost:1234/v1`), llama.cpp, or a hosted one. It is the OpenAI adapter with the
 * name, base URL and key the configuration gives; local servers usually need no key, and then no
 * `Authorization` header is sent. The conservative defaults (`max_tokens`, JSON mode) are what such
 * servers implement; pass `quirks` to unlock more.
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Quirks } from "../openai/Config.ts"
import * as OpenAiProvider from "../openai/OpenAiProvider.ts"
import type { Provider } from "../Provider.ts"
import type * as ConnectionPool from "../ConnectionPool.ts"

/** Where the server is and what it is called. */
export interface CompatibleSettings {
  /** The provider name errors and the catalogue show, e.g. `ollama`. */
  readonly name: string
  /** The server's base URL, ending before `/chat/completions` (usually `…/v1`). */
  readonly baseUrl: string
  /** Absent or empty for servers without authentication. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly timeout: Duration.Duration
  /** Extra headers for every request (a gateway's own key header, for instance). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly quirks?: Partial<Quirks> | undefined
  /** The connection pool to the server (`ConnectionPool.ts`); `ConnectionPool.defaults` when absent. */
  readonly pool?: ConnectionPool.Settings | undefined
}

/** A provider for the server at `settings.baseUrl`. */
export const make = (settings: CompatibleSettings): Effect.Effect<Provider, never, Scope.Scope> =>
  OpenAiProvider.make(
    { baseUrl: settings.baseUrl, apiKey: settings.apiKey, timeout: settings.timeout, pool: settings.pool },
    {
      name: settings.name,
      defaultBaseUrl: settings.baseUrl,
      headers: settings.headers,
      quirks: { maxTokensParam: "max_tokens", structuredOutput: "json_object", ...settings.quirks }
    }
  )
