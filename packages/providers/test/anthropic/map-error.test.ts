/**
 * `toAiErrorReason`: each kind of SDK failure becomes the effect/ai reason that
 * `ModelCatalog.fromAiError` turns into the right `ModelError`, with `retryAfter` for rate limits,
 * the markers for "context too long" and "timeout", and never the upstream error text.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError } from "@anthropic-ai/sdk"
import { ModelCatalog } from "@polyagent/runtime"
import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import type { AiError } from "effect/ai"
import * as MapError from "../../src/anthropic/map-error.ts"
import { LocalModel } from "../../src/index.ts"

const request: MapError.RequestInfo = { method: "POST", url: "https://api.anthropic.com/v1/messages" }
const now = Date.parse("2026-11-25T12:00:00Z")

// The upstream text carries a marker that must never reach an error a client could see.
const leak = "UPSTREAM-TEXT-sk-ant-secret"

const apiError = (status: number | undefined, type: string, headers: Record<string, string> = {}, message = leak) =>
  status === undefined
    ? new APIError(undefined, { type: "error", error: { type, message } }, undefined, new Headers(headers))
    : APIError.generate(status, { type: "error", error: { type, message } }, undefined, new Headers(headers))

const reasonOf = (cause: unknown): AiError.AiErrorReason => MapError.toAiErrorReason(cause, request, now)

// `fromAiError` reads only the model's id and provider from the info.
const modelErrorOf = (cause: unknown): ModelCatalog.ModelError =>
  ModelCatalog.fromAiError(LocalModel.info, MapError.toAiError("generateText", reasonOf(cause)))

describe("toAiErrorReason", () => {
  it("maps each HTTP failure to the reason the router and the edge act on", () => {
    const cases: ReadonlyArray<readonly [unknown, string, ModelCatalog.ModelErrorReason, boolean]> = [
      [apiError(401, "authentication_error"), "AuthenticationError", "unauthorized", false],
      [apiError(403, "permission_error"), "AuthenticationError", "unauthorized", false],
      [apiError(402, "billing_error"), "QuotaExhaustedError", "rate_limited", false],
      [apiError(400, "invalid_request_error"), "InvalidRequestError", "bad_request", false],
      [apiError(404, "not_found_error"), "InvalidRequestError", "bad_request", false],
      [apiError(429, "rate_limit_error"), "RateLimitError", "rate_limited", true],
      [apiError(500, "api_error"), "InternalProviderError", "overloaded", true],
      [apiError(529, "overloaded_error"), "InternalProviderError", "overloaded", true],
      [apiError(503, "api_error"), "InternalProviderError", "overloaded", true],
      [new APIConnectionError({ message: "connect ECONNREFUSED" }), "NetworkError", "network", true],
      [new TypeError("terminated"), "NetworkError", "network", true],
      [new SyntaxError("Unexpected end of JSON input"), "InvalidResponseError", "invalid_response", false],
      [new Error("something odd"), "UnknownError", "unknown", false]
    ]
    for (const [cause, tag, reason, retryable] of cases) {
      assert.strictEqual(reasonOf(cause)._tag, tag, `${String(cause)}`)
      const modelError = modelErrorOf(cause)
      assert.strictEqual(modelError.reason, reason, `${String(cause)}`)
      assert.strictEqual(modelError.retryable, retryable, `${String(cause)}`)
    }
  })

  it("maps a streamed error event, which has no status, by its type", () => {
    assert.strictEqual(reasonOf(apiError(undefined, "overloaded_error"))._tag, "InternalProviderError")
    assert.strictEqual(reasonOf(apiError(undefined, "rate_limit_error"))._tag, "RateLimitError")
    assert.strictEqual(reasonOf(apiError(undefined, "invalid_request_error"))._tag, "InvalidRequestError")
    assert.strictEqual(reasonOf(apiError(undefined, "something_new"))._tag, "UnknownError")
  })

  it("marks a prompt too long for the model's context window", () => {
    const reason = reasonOf(
      apiError(400, "invalid_request_error", {}, "prompt is too long: 210000 tokens > 200000 maximum")
    )
    assert.strictEqual(reason._tag, "InvalidRequestError")
    assert.strictEqual(reason._tag === "InvalidRequestError" ? reason.constraint : undefined, MapError.contextTooLong)
    const other = reasonOf(apiError(400, "invalid_request_error", {}, "messages: field required"))
    assert.isUndefined(other._tag === "InvalidRequestError" ? other.constraint : "not an InvalidRequestError")
  })

  it("marks timeouts: the SDK's, HTTP 408 and Anthropic's timeout_error", () => {
    for (const cause of [
      new APIConnectionTimeoutError(),
      apiError(408, "timeout_error"),
      apiError(504, "timeout_error")
    ]) {
      const reason = reasonOf(cause)
      assert.strictEqual(reason._tag, "NetworkError")
      assert.strictEqual(reason._tag === "NetworkError" ? reason.description : undefined, MapError.timedOut)
      assert.isTrue(reason.isRetryable)
    }
  })

  it("reads retry-after as seconds, retry-after-ms as milliseconds, and an HTTP date against the clock", () => {
    const retryAfter = (headers: Record<string, string>) => {
      const reason = reasonOf(apiError(429, "rate_limit_error", headers))
      return reason._tag === "RateLimitError" && reason.retryAfter !== undefined
        ? Duration.toMillis(reason.retryAfter)
        : undefined
    }
    assert.strictEqual(retryAfter({ "retry-after": "7" }), 7000)
    assert.strictEqual(retryAfter({ "retry-after-ms": "1500", "retry-after": "7" }), 1500)
    assert.strictEqual(retryAfter({ "retry-after": "Wed, 25 Nov 2026 12:00:30 GMT" }), 30_000)
    assert.isUndefined(retryAfter({ "retry-after": "soon" }))
    assert.isUndefined(retryAfter({}))
    const aiError = MapError.toAiError(
      "generateText",
      reasonOf(apiError(429, "rate_limit_error", { "retry-after": "7" }))
    )
    assert.strictEqual(aiError.retryAfter === undefined ? undefined : Duration.toMillis(aiError.retryAfter), 7000)
  })

  it("never copies the upstream error text into the error", () => {
    const statuses = [400, 401, 402, 403, 404, 413, 429, 500, 504, 529, undefined]
    for (const status of statuses) {
      const error = MapError.toAiError("generateText", reasonOf(apiError(status, "api_error")))
      assert.notInclude(error.message, leak, `HTTP ${status}`)
      assert.notInclude(JSON.stringify(error), leak, `HTTP ${status}`)
      assert.notInclude(String(error), leak, `HTTP ${status}`)
    }
  })
})
