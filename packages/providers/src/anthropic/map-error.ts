/**
 * What went wrong with an Anthropic call, as effect/ai's `AiError`, so the runtime's
 * `ModelCatalog.fromAiError` can tell a rate limit from a bad key, an overload, a timeout or a
 * prompt too long for the model. Every description is ours: the upstream error text is read only to
 * recognise a prompt that is too long and is never copied, because it may echo the prompt, and
 * nothing here ever sees the API key. Pure; the caller supplies the clock's time.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AnthropicError
} from "@anthropic-ai/sdk"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import * as AiError from "effect/ai/AiError"
import { ModelCatalog } from "@polyagent/runtime"

/** The `module` of every `AiError` this provider raises. */
export const module = "AnthropicLanguageModel"

/**
 * The `constraint` of the `InvalidRequestError` raised when the prompt does not fit the model's
 * context window (HTTP 400 `invalid_request_error`, "prompt is too long"). `fromAiError` reads it.
 */
export const contextTooLong = ModelCatalog.contextTooLongConstraint

/**
 * The `description` of the `NetworkError` raised when a request timed out: no answer within
 * `Settings.timeout` (the SDK's or ours), or Anthropic's own `timeout_error`. `fromAiError` reads it.
 */
export const timedOut = `${ModelCatalog.timeoutPrefix}: no answer in time`

/** Where the failed request went: for `NetworkError`, which names the method and URL. */
export interface RequestInfo {
  readonly method: string
  readonly url: string
}

/** The reason for a request that got no answer within the configured timeout. */
export const timeoutReason = (request: RequestInfo): AiError.AiErrorReason =>
  new AiError.NetworkError({
    reason: "TransportError",
    description: timedOut,
    method: request.method,
    url: request.url
  })

/**
 * Maps whatever an SDK call threw (or a streamed `error` event, which the SDK throws as an
 * `APIError` without status) to an `AiError` reason:
 *
 * | upstream | reason |
 * | --- | --- |
 * | 400 `invalid_request_error` "prompt is too long" | `InvalidRequestError` with `constraint: "context_too_long"` |
 * | other 400, 404, 413, 422 | `InvalidRequestError` |
 * | 401 `authentication_error` / 403 `permission_error` | `AuthenticationError` (`InvalidKey` / `InsufficientPermissions`) |
 * | 402 `billing_error` | `QuotaExhaustedError` |
 * | 429 `rate_limit_error` | `RateLimitError`, `retryAfter` from `retry-after-ms` or `retry-after` |
 * | 500 `api_error`, 529 `overloaded_error`, any 5xx | `InternalProviderError` |
 * | 408, 504 `timeout_error`, the SDK's timeout | `NetworkError` with `description: "timeout"` |
 * | connection refused, reset or cut mid-stream | `NetworkError` (`TransportError`) |
 * | malformed JSON | `InvalidResponseError` |
 * | anything else | `UnknownError` |
 *
 * `now` (epoch milliseconds) resolves a `retry-after` given as an HTTP date.
 */
export const toAiErrorReason = (cause: unknown, request: RequestInfo, now: number): AiError.AiErrorReason => {
  if (cause instanceof APIConnectionTimeoutError) return timeoutReason(request)
  if (cause instanceof APIUserAbortError) return transport(request, "the request was aborted")
  if (cause instanceof APIConnectionError) return transport(request, "could not reach Anthropic")
  if (cause instanceof APIError) return fromApiError(cause, request, now)
  if (cause instanceof SyntaxError)
    return new AiError.InvalidResponseError({ description: "Anthropic sent malformed JSON" })
  if (cause instanceof AnthropicError) return new AiError.UnknownError({ description: "the Anthropic client failed" })
  // fetch's body reader fails with a TypeError ("terminated") when the connection drops mid-answer.
  if (cause instanceof TypeError) return transport(request, "the connection to Anthropic was lost")
  return new AiError.UnknownError({ description: "the Anthropic call failed" })
}

/** {@link toAiErrorReason} wrapped as the `AiError` of `method` (`generateText`, `streamText`). */
export const toAiError = (method: string, reason: AiError.AiErrorReason): AiError.AiError =>
  AiError.make({ module, method, reason })

// ---------------------------------------------------------------------------------------------

const transport = (request: RequestInfo, description: string): AiError.AiErrorReason =>
  new AiError.NetworkError({ reason: "TransportError", description, method: request.method, url: request.url })

// The error `type` of the body, or of a streamed `error` event, when the status says too little.
const typeOf = (error: APIError): string | undefined => (Predicate.isString(error.type) ? error.type : undefined)

const contextTooLongText = /prompt is too long|exceed(s)? (the )?context (window|limit)/i

const fromApiError = (error: APIError, request: RequestInfo, now: number): AiError.AiErrorReason => {
  const type = typeOf(error)
  const metadata = {
    anthropic: {
      status: error.status ?? null,
      type: type ?? null,
      errorCode: error.errorCode,
      requestId: error.requestID ?? null
    }
  }
  const status = error.status ?? statusOfType(type)
  switch (status) {
    case 400:
    case 404:
    case 413:
    case 422: {
      if (Predicate.isString(error.apiMessage) && contextTooLongText.test(error.apiMessage)) {
        return new AiError.InvalidRequestError({
          parameter: "messages",
          constraint: contextTooLong,
          description: "the prompt does not fit the model's context window",
          metadata
        })
      }
      return new AiError.InvalidRequestError({ description: invalidRequestText(status), metadata })
    }
    case 401:
      return new AiError.AuthenticationError({
        kind: "InvalidKey",
        description: "Anthropic rejected the API key",
        metadata
      })
    case 403:
      return new AiError.AuthenticationError({
        kind: "InsufficientPermissions",
        description: "the API key may not use this model or endpoint",
        metadata
      })
    case 402:
      return new AiError.QuotaExhaustedError({ metadata })
    case 429: {
      const retryAfter = retryAfterOf(error.headers, now)
      return new AiError.RateLimitError({ ...(retryAfter === undefined ? {} : { retryAfter }), metadata })
    }
    case 408:
    case 504:
      return timeoutReason(request)
    case 529:
      return new AiError.InternalProviderError({ description: "Anthropic is overloaded", metadata })
    default:
      if (status !== undefined && status >= 500) {
        return new AiError.InternalProviderError({ description: `Anthropic failed with HTTP ${status}`, metadata })
      }
      return new AiError.UnknownError({
        description: status === undefined ? "Anthropic reported an error" : `Anthropic answered HTTP ${status}`,
        metadata
      })
  }
}

const invalidRequestText = (status: number): string => {
  switch (status) {
    case 404:
      return "Anthropic does not know this model or endpoint"
    case 413:
      return "the request is larger than Anthropic accepts"
    default:
      return "Anthropic rejected the request as invalid"
  }
}

// A streamed `error` event has no HTTP status of its own; its documented `type` stands for one.
const statusOfType = (type: string | undefined): number | undefined => {
  switch (type) {
    case "invalid_request_error":
      return 400
    case "authentication_error":
      return 401
    case "billing_error":
      return 402
    case "permission_error":
      return 403
    case "not_found_error":
      return 404
    case "request_too_large":
      return 413
    case "rate_limit_error":
      return 429
    case "api_error":
      return 500
    case "timeout_error":
      return 504
    case "overloaded_error":
      return 529
    default:
      return undefined
  }
}

/**
 * How long to wait before retrying, from `retry-after-ms` (milliseconds) or `retry-after` (seconds,
 * or an HTTP date relative to `now`). `undefined` when absent, unreadable or not in the future.
 */
export const retryAfterOf = (headers: Headers | undefined, now: number): Duration.Duration | undefined => {
  const millis = headers?.get("retry-after-ms")
  if (millis !== null && millis !== undefined) {
    const value = Number(millis.trim())
    if (millis.trim().length > 0 && Number.isFinite(value) && value > 0) return Duration.millis(value)
  }
  const header = headers?.get("retry-after")?.trim()
  if (header === undefined || header.length === 0) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return seconds > 0 ? Duration.seconds(seconds) : undefined
  const date = Date.parse(header)
  return Number.isFinite(date) && date > now ? Duration.millis(date - now) : undefined
}
