/**
 * OpenRouter: one key for hundreds of models behind the OpenAI Chat Completions API. It is the
 * OpenAI adapter with OpenRouter's base URL and its app-attribution headers (`HTTP-Referer`,
 * `X-Title`), which put PolyAgent's requests under its name in OpenRouter's rankings and logs.
 * OpenRouter's `/models` needs no key, so the probe asks `/key`, which does.
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as OpenAiProvider from "../openai/OpenAiProvider.ts"
import type { Provider, Settings } from "../Provider.ts"

/** OpenRouter's API. */
export const defaultBaseUrl = "https://openrouter.ai/api/v1"

/** How the app names itself to OpenRouter. */
export interface Attribution {
  /** Sent as `HTTP-Referer`: the app's site, which OpenRouter's rankings link to. Not sent when absent. */
  readonly referer?: string | undefined
  /** Sent as `X-Title`: the app's name (default `PolyAgent`). */
  readonly title?: string | undefined
}

/** The OpenRouter provider; `languageModel` takes OpenRouter ids such as `meta-llama/llama-3.3-70b-instruct`. */
export const make = (settings: Settings, attribution?: Attribution): Effect.Effect<Provider, never, Scope.Scope> =>
  OpenAiProvider.make(settings, {
    name: "openrouter",
    defaultBaseUrl,
    headers: {
      "X-Title": attribution?.title ?? "PolyAgent",
      ...(attribution?.referer === undefined ? {} : { "HTTP-Referer": attribution.referer })
    },
    // Its models take `max_tokens`, not OpenAI's newer field; errors carry the HTTP status as `code`.
    quirks: { maxTokensParam: "max_tokens", probePath: "/key" }
  })
