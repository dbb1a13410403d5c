/**
 * GLM, Zhipu AI's models (`glm-4.6`, `glm-4.5-air`), through Zhipu's OpenAI-compatible endpoint. It
 * is the OpenAI adapter with Zhipu's base URL and quirks: GLM only knows `tool_choice: "auto"`,
 * takes `max_tokens`, caps `temperature` at 1, reports streamed usage on its finish chunk without
 * being asked (no `stream_options`), streams thinking as `reasoning_content`, and explains many
 * failures only through numeric codes in the error body (a 429 may be an empty balance).
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { ErrorKind } from "../openai/Config.ts"
import * as OpenAiProvider from "../openai/OpenAiProvider.ts"
import type { Provider, Settings } from "../Provider.ts"

/** Zhipu's mainland endpoint; `https://api.z.ai/api/paas/v4` is the international one. */
export const defaultBaseUrl = "https://open.bigmodel.cn/api/paas/v4"

/** Zhipu's business error codes (docs.z.ai, "API error codes") that the HTTP status does not tell. */
export const errorCodes: Readonly<Record<string, ErrorKind>> = {
  "1000": "unauthorized",
  "1001": "unauthorized",
  "1002": "unauthorized",
  "1003": "unauthorized",
  "1004": "unauthorized",
  "1113": "quota_exhausted",
  "1211": "bad_request",
  "1301": "content_filtered",
  "1302": "rate_limited",
  "1303": "rate_limited",
  "1304": "quota_exhausted",
  "1305": "rate_limited"
}

/** The GLM provider. */
export const make = (settings: Settings): Effect.Effect<Provider, never, Scope.Scope> =>
  OpenAiProvider.make(settings, {
    name: "glm",
    defaultBaseUrl,
    quirks: {
      streamOptions: false,
      maxTokensParam: "max_tokens",
      toolChoice: "auto",
      structuredOutput: "json_object",
      maxTemperature: 1,
      // GLM's end-user field is `user_id` (6–128 characters); ours may not fit, so none is sent.
      sendUser: false,
      errorCodes
    }
  })
