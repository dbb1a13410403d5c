/**
 * Token usage of one model call, as clients see it (OpenAI's field names, with the cached share
 * of the prompt and the reasoning share of the completion in OpenAI's `*_tokens_details`), and
 * the arithmetic the runtime needs on it: sums, and the price of a call.
 */
import type * as Response from "effect/ai/Response"
import * as Schema from "effect/Schema"

/** The part of the prompt read from the provider's prompt cache. */
export const PromptTokensDetails = Schema.Struct({ cached_tokens: Schema.Int })

/** The part of the completion spent on reasoning (billed as output, often at its own rate). */
export const CompletionTokensDetails = Schema.Struct({ reasoning_tokens: Schema.Int })

/**
 * Tokens a model call consumed. `total_tokens` is always `prompt_tokens + completion_tokens`;
 * cached tokens are part of `prompt_tokens`, reasoning tokens part of `completion_tokens`. The
 * details are absent when the provider reported none.
 */
export class Usage extends Schema.Class<Usage>("@polyagent/runtime/Usage")({
  prompt_tokens: Schema.Int,
  completion_tokens: Schema.Int,
  total_tokens: Schema.Int,
  prompt_tokens_details: Schema.optionalKey(PromptTokensDetails),
  completion_tokens_details: Schema.optionalKey(CompletionTokensDetails)
}) {}

/** The shares of a call's tokens priced at their own rates. */
export interface Details {
  /** Prompt tokens read from the cache (part of the prompt tokens). */
  readonly cached?: number | undefined
  /** Completion tokens spent on reasoning (part of the completion tokens). */
  readonly reasoning?: number | undefined
}

/**
 * Builds a `Usage` from input and output token counts, and optionally their cached and reasoning
 * shares (kept within the totals they are part of; a share of 0 or less is left out).
 */
export const make = (promptTokens: number, completionTokens: number, details: Details = {}): Usage => {
  const cached = Math.min(details.cached ?? 0, promptTokens)
  const reasoning = Math.min(details.reasoning ?? 0, completionTokens)
  return new Usage({
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    ...(cached > 0 ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
    ...(reasoning > 0 ? { completion_tokens_details: { reasoning_tokens: reasoning } } : {})
  })
}

/** No tokens at all. */
export const zero: Usage = make(0, 0)

/** Cached prompt tokens of `usage` (0 when not reported). */
export const cachedTokens = (usage: Usage): number => usage.prompt_tokens_details?.cached_tokens ?? 0

/** Reasoning completion tokens of `usage` (0 when not reported). */
export const reasoningTokens = (usage: Usage): number => usage.completion_tokens_details?.reasoning_tokens ?? 0

/**
 * effect/ai's usage of a call in our terms: the one conversion both the runtime's turns and the
 * edge's converted completions use, so a streamed and a non-streamed answer bill alike. Unknown
 * counts are 0.
 */
export const fromResponse = (usage: Response.Usage): Usage =>
  make(usage.inputTokens.total ?? 0, usage.outputTokens.total ?? 0, {
    cached: usage.inputTokens.cacheRead,
    reasoning: usage.outputTokens.reasoning
  })

/**
 * Prices of a model in USD per 1,000 tokens. `cached_input` prices prompt tokens read from the
 * cache and `reasoning` the reasoning tokens of the completion; absent, they cost the `input`
 * and `output` rates.
 */
export class Price extends Schema.Class<Price>("@polyagent/runtime/Price")({
  input: Schema.Finite,
  output: Schema.Finite,
  cached_input: Schema.optionalKey(Schema.Finite),
  reasoning: Schema.optionalKey(Schema.Finite)
}) {}

/**
 * The cost in USD of `usage` at `price`, rounded to a micro-dollar so sums stay exact enough:
 * uncached prompt tokens at `input`, cached ones at `cached_input`, reasoning tokens at
 * `reasoning`, the rest of the completion at `output`.
 */
export const cost = (usage: Usage, price: Price): number => {
  const cached = cachedTokens(usage)
  const reasoning = reasoningTokens(usage)
  const perThousand =
    (usage.prompt_tokens - cached) * price.input +
    cached * (price.cached_input ?? price.input) +
    (usage.completion_tokens - reasoning) * price.output +
    reasoning * (price.reasoning ?? price.output)
  return Math.round((perThousand / 1000) * 1e6) / 1e6
}

/** The usage of two model calls together (a turn with several steps). */
export const add = (a: Usage, b: Usage): Usage =>
  make(a.prompt_tokens + b.prompt_tokens, a.completion_tokens + b.completion_tokens, {
    cached: cachedTokens(a) + cachedTokens(b),
    reasoning: reasoningTokens(a) + reasoningTokens(b)
  })
