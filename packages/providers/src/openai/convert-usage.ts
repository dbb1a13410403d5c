/**
 * Chat Completions `usage` as effect/ai's `Response.Usage`: prompt tokens in (with the cached share
 * from `prompt_tokens_details.cached_tokens`), completion tokens out (with the reasoning share from
 * `completion_tokens_details.reasoning_tokens`). A count the server did not report stays unknown
 * (`undefined`), never 0.
 */
import type * as Response from "effect/ai/Response"
import type { Usage } from "./wire.ts"

/** `usage` as effect/ai counts it; all counts unknown when the server sent none. */
export const convertUsage = (usage: Usage | null | undefined): typeof Response.Usage.Encoded => {
  const input = count(usage?.prompt_tokens)
  const cached = count(usage?.prompt_tokens_details?.cached_tokens)
  const output = count(usage?.completion_tokens)
  const reasoning = count(usage?.completion_tokens_details?.reasoning_tokens)
  return {
    inputTokens: {
      total: input,
      cacheRead: cached,
      // OpenAI bills cache writes as ordinary input and does not report them.
      cacheWrite: undefined,
      uncached: input === undefined ? undefined : input - (cached ?? 0)
    },
    outputTokens: {
      total: output,
      reasoning,
      text: output === undefined ? undefined : output - (reasoning ?? 0)
    }
  }
}

// Usage is an Int in effect/ai; a server sending 12.0 or a negative count must not fail the call.
const count = (value: number | null | undefined): number | undefined =>
  value === null || value === undefined || !Number.isFinite(value) ? undefined : Math.max(0, Math.round(value))
