/**
 * Token usage of one model call, as clients see it (OpenAI's field names), and the
 * arithmetic the runtime needs on it.
 */
import * as Schema from "effect/Schema"

/** Tokens a model call consumed. `total_tokens` is always the sum of the other two. */
export class Usage extends Schema.Class<Usage>("@polyagent/runtime/Usage")({
  prompt_tokens: Schema.Int,
  completion_tokens: Schema.Int,
  total_tokens: Schema.Int
}) {}

/** Builds a `Usage` from input and output token counts. */
export const make = (promptTokens: number, completionTokens: number): Usage =>
  new Usage({
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens
  })

/** Prices of a model in USD per 1,000 tokens. */
export class Price extends Schema.Class<Price>("@polyagent/runtime/Price")({
  input: Schema.Finite,
  output: Schema.Finite
}) {}

/** The cost in USD of `usage` at `price`, rounded to a micro-dollar so sums stay exact enough. */
export const cost = (usage: Usage, price: Price): number =>
  Math.round(((usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1000) * 1e6) / 1e6

/** The usage of two model calls together (a turn with several steps). */
export const add = (a: Usage, b: Usage): Usage =>
  make(a.prompt_tokens + b.prompt_tokens, a.completion_tokens + b.completion_tokens)
