/**
 * What the OpenAI SDK throws, as effect/ai's `AiError`. The reason follows the HTTP status and,
 * where the status says too little, the body's `error.code` (`insufficient_quota` on a 429 is an
 * empty wallet, not a rate limit; GLM's numeric codes) or a context-window message on a 400.
 *
 * Nothing of the upstream's text reaches the error: descriptions are ours, so an upstream that
 * echoes the API key or the prompt cannot leak it to a client. What is kept: the HTTP status, the
 * upstream request id, `Retry-After`, and the error code and type when they look like identifiers.
 *
 * Conventions the runtime's `ModelCatalog.fromAiError` reads (AiError has no reason of its own
 * for them): a timeout is a `NetworkError` whose description starts with {@link timeoutPrefix}; a
 * prompt too long for the model is an `InvalidRequestError` whose `constraint` is
 * `ModelCatalog.contextTooLongConstraint`.
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as AiError from "effect/ai/AiError"
import { ModelCatalog } from "@polyagent/runtime"
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai"
import type { ErrorKind, Quirks } from "./Config.ts"
import { ErrorBody } from "./wire.ts"

/** Where a failed call went, for the error's fields. */
export interface ErrorContext {
  /** The provider name (`openai`, `glm`, …): the AiError's `module` and the metadata key. */
  readonly provider: string
  /** `generateText`, `streamText` or `probe`. */
  readonly method: string
  /** The endpoint, without credentials or query. */
  readonly url: string
  /** Now, in epoch milliseconds: `Retry-After` may be an HTTP date. */
  readonly now: number
  /** The request timeout, for the timeout's description. */
  readonly timeoutMs: number
  readonly errorCodes: Quirks["errorCodes"]
}

/** How every timeout's `NetworkError.description` starts. */
export const timeoutPrefix = ModelCatalog.timeoutPrefix

/**
 * `error` (anything the SDK or its stream threw) as an `AiError`. `phase` says whether the answer
 * had started: an unexplained failure while reading a stream is a lost connection.
 */
export const mapError = (error: unknown, context: ErrorContext, phase: "request" | "stream"): AiError.AiError =>
  AiError.make({ module: context.provider, method: context.method, reason: reasonOf(error, context, phase) })

/** A timeout of the request or of a silent stream, as an `AiError`. */
export const timeoutError = (context: ErrorContext, what: string): AiError.AiError =>
  AiError.make({
    module: context.provider,
    method: context.method,
    reason: new AiError.NetworkError({
      reason: "TransportError",
      method: "POST",
      url: context.url,
      description: `${timeoutPrefix}: ${what} within ${context.timeoutMs} ms`
    })
  })

/**
 * The wait a `Retry-After-Ms` (OpenAI) or `Retry-After` (seconds or an HTTP date) header asks for;
 * `undefined` when there is none or it does not parse.
 */
export const parseRetryAfter = (
  headers: { readonly get: (name: string) => string | null } | undefined,
  now: number
): Duration.Duration | undefined => {
  const millis = Number(headers?.get("retry-after-ms") ?? Number.NaN)
  if (Number.isFinite(millis) && millis >= 0) return Duration.millis(millis)
  const value = headers?.get("retry-after")?.trim()
  if (value === undefined || value === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return seconds >= 0 ? Duration.seconds(seconds) : undefined
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Duration.millis(Math.max(0, date - now))
}

/** `text` (an upstream's words, for the server log) without `secret`; shorter than 8 characters, it would match ordinary text and is left. */
export const scrub = (text: string, secret: string): string =>
  secret.length >= 8 ? text.replaceAll(secret, "[redacted]") : text

const reasonOf = (error: unknown, context: ErrorContext, phase: "request" | "stream"): AiError.AiErrorReason => {
  if (error instanceof APIConnectionTimeoutError) {
    return network(context, `${timeoutPrefix}: no response within ${context.timeoutMs} ms`)
  }
  if (error instanceof APIUserAbortError) return network(context, "Aborted: the request was cancelled")
  if (error instanceof APIConnectionError)
    return network(context, "Connection failed: the provider could not be reached")
  if (error instanceof APIError) return fromApiError(error, context)
  if (error instanceof SyntaxError) {
    return new AiError.InvalidResponseError({ description: "the provider sent malformed JSON" })
  }
  if (phase === "stream") return network(context, "Connection lost: the provider closed the stream mid-answer")
  return new AiError.UnknownError({ description: "the provider call failed unexpectedly" })
}

const network = (context: ErrorContext, description: string): AiError.NetworkError =>
  new AiError.NetworkError({ reason: "TransportError", method: "POST", url: context.url, description })

const fromApiError = (error: APIError, context: ErrorContext): AiError.AiErrorReason => {
  const body = Schema.decodeUnknownOption(ErrorBody)(error.error)
  const code = body._tag === "Some" ? body.value.code : undefined
  const type = body._tag === "Some" ? body.value.type : undefined
  const message = body._tag === "Some" && Predicate.isString(body.value.message) ? body.value.message : ""
  // An error event inside a stream has no status; OpenRouter puts the HTTP status in `code`.
  const status = error.status ?? (Predicate.isNumber(code) && code >= 400 && code < 600 ? code : undefined)
  const requestId = error.requestID ?? undefined
  const http: typeof AiError.HttpContext.Type | undefined =
    status === undefined
      ? undefined
      : { response: { status, headers: requestId === undefined ? {} : { "x-request-id": requestId } } }
  const details = {
    ...(status === undefined ? {} : { status }),
    ...identifier("code", code),
    ...identifier("type", type)
  }
  const metadata = { [context.provider]: details }
  const common = http === undefined ? { metadata } : { metadata, http }
  const kind = kindOf(status, code, type, message, context.errorCodes)
  const what = status === undefined ? "mid-stream" : `HTTP ${status}`
  switch (kind) {
    case "rate_limited": {
      const retryAfter = parseRetryAfter(error.headers, context.now)
      return new AiError.RateLimitError(retryAfter === undefined ? common : { ...common, retryAfter })
    }
    case "quota_exhausted":
      return new AiError.QuotaExhaustedError(common)
    case "unauthorized":
      return new AiError.AuthenticationError({
        ...common,
        kind: status === 403 ? "InsufficientPermissions" : "InvalidKey",
        description: `the provider rejected the credentials (${what})`
      })
    case "content_filtered":
      return new AiError.ContentPolicyError({
        ...common,
        description: `the provider's content policy blocked the request (${what})`
      })
    case "context_too_long":
      return new AiError.InvalidRequestError({
        ...common,
        metadata,
        constraint: ModelCatalog.contextTooLongConstraint,
        description: `the prompt does not fit the model's context window (${what})`
      })
    case "bad_request":
      return new AiError.InvalidRequestError({
        ...common,
        ...(body._tag === "Some" ? identifier("parameter", body.value.param) : {}),
        description:
          status === 404
            ? "the model or endpoint does not exist (HTTP 404)"
            : `the provider rejected the request (${what})`
      })
    case "overloaded":
      return new AiError.InternalProviderError({ ...common, description: `the provider is overloaded (${what})` })
    case "timeout":
      return network(context, `${timeoutPrefix}: the provider gave up waiting (${what})`)
    case "server_error":
      return new AiError.InternalProviderError({ ...common, description: `the provider failed (${what})` })
    case "unknown":
      return new AiError.UnknownError({ ...common, description: `the provider answered ${what}` })
  }
}

type Kind = ErrorKind | "timeout" | "server_error" | "unknown"

const kindOf = (
  status: number | undefined,
  code: string | number | null | undefined,
  type: string | null | undefined,
  message: string,
  errorCodes: Quirks["errorCodes"]
): Kind => {
  const vendor = vendorKind(code, errorCodes) ?? vendorKind(type, errorCodes)
  if (vendor !== undefined) return vendor
  if (status === undefined) return "server_error"
  if ((status === 400 || status === 413 || status === 422) && contextTooLong.test(message)) return "context_too_long"
  if (status === 401) return "unauthorized"
  if (status === 403) return "unauthorized"
  if (status === 402) return "quota_exhausted"
  if (status === 408) return "timeout"
  if (status === 429) return "rate_limited"
  if (status === 503 || status === 529) return "overloaded"
  if (status >= 500) return "server_error"
  if (status >= 400) return "bad_request"
  return "unknown"
}

const vendorKind = (
  code: string | number | null | undefined,
  errorCodes: Quirks["errorCodes"]
): ErrorKind | undefined => (code === null || code === undefined ? undefined : errorCodes[String(code)])

// What OpenAI, vLLM, OpenRouter, Ollama and llama.cpp say when a prompt is too long. It only
// classifies the error; the text itself is never passed on.
const contextTooLong =
  /context (length|window)|maximum context|too many tokens|prompt is too long|input is too long|exceeds? the (model's )?(context|maximum)/i

// Codes and types are identifiers (`rate_limit_exceeded`, `1302`); anything else might be text.
const identifier = (key: string, value: string | number | null | undefined): Record<string, string> => {
  const text = value === null || value === undefined ? "" : String(value)
  return /^[\w.:-]{1,64}$/.test(text) ? { [key]: text } : {}
}
