/**
 * How PolyAgent talks to Anthropic's Messages API: the public endpoint, the API version pinned on
 * every request, and the `max_tokens` sent when a call sets none (the Messages API requires the
 * field, and a value above a model's output limit is rejected). Pure data and small lookups; the
 * client itself is built in `AnthropicProvider.ts`.
 */
import * as Duration from "effect/Duration"

/** The provider name, as `Provider.name` and `ModelInfo.provider` show it. */
export const providerName = "anthropic"

/** The public endpoint; `Settings.baseUrl` overrides it (tests point it at a local fake). */
export const defaultBaseUrl = "https://api.anthropic.com"

/**
 * The `anthropic-version` header sent on every request. It is the version `@anthropic-ai/sdk@1.14.0`
 * was generated for, pinned here so that an SDK upgrade cannot change the wire contract unnoticed.
 */
export const apiVersion = "2026-10-21"

/** `max_tokens` for a model this table does not know: small enough for every Claude model. */
export const fallbackMaxTokens = 4096

// Longest matching prefix wins. A default is a model's output limit, as vercel/ai does, so an
// answer is cut only where the model itself would stop; families newer than Claude 4.5 are assumed
// to keep the 64k limit of their predecessors.
const maxTokensByPrefix: ReadonlyArray<readonly [prefix: string, maxTokens: number]> = [
  ["claude-3-haiku", 4096],
  ["claude-3-opus", 4096],
  ["claude-3-sonnet", 4096],
  ["claude-3-5-", 8192],
  ["claude-3-7-sonnet", 64000],
  ["claude-opus-4-0", 32000],
  ["claude-opus-4-1", 32000],
  ["claude-opus-4-2025", 32000],
  ["claude-opus-4", 64000],
  ["claude-sonnet-4", 64000],
  ["claude-haiku-4", 64000],
  ["claude-opus-5", 64000],
  ["claude-sonnet-5", 64000],
  ["claude-haiku-5", 64000],
  ["claude-fable-5", 64000],
  ["claude-mythos-", 64000]
]

/**
 * The `max_tokens` sent for `modelId` when the call sets none: the model's output limit where it
 * is known, {@link fallbackMaxTokens} otherwise.
 */
export const defaultMaxTokens = (modelId: string): number => {
  let best: readonly [string, number] | undefined
  for (const entry of maxTokensByPrefix) {
    if (modelId.startsWith(entry[0]) && (best === undefined || entry[0].length > best[0].length)) best = entry
  }
  return best === undefined ? fallbackMaxTokens : best[1]
}

/**
 * `Settings.timeout` as the SDK's `timeout` option: whole milliseconds, at least 1, and at most
 * what one `setTimeout` can wait (an infinite duration would otherwise fire at once).
 */
export const timeoutMillis = (timeout: Duration.Duration): number =>
  Math.min(Math.max(1, Math.ceil(Duration.toMillis(timeout))), 2 ** 31 - 1)
