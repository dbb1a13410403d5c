/**
 * SDK errors → AiError: status, vendor codes and context-window messages pick the reason; only the
 * status, request id, Retry-After and identifier-like codes survive; upstream text never does.
 */
import { assert, describe, it } from "@effect/vitest"
import { ModelCatalog } from "@polyagent/runtime"
import { Duration } from "effect"
import { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai"
import { openAiQuirks } from "../../src/openai/Config.ts"
import { errorCodes as glmCodes } from "../../src/glm/GlmProvider.ts"
import { type ErrorContext, mapError, parseRetryAfter, timeoutPrefix } from "../../src/openai/map-error.ts"

const now = Date.parse("2026-11-25T12:00:00Z")

const context: ErrorContext = {
  provider: "openai",
  method: "generateText",
  url: "https://api.openai.com/v1/chat/completions",
  now,
  timeoutMs: 30_000,
  errorCodes: openAiQuirks.errorCodes
}

const apiError = (status: number | undefined, error: Record<string, unknown>, headers: Record<string, string> = {}) =>
  APIError.generate(status, { error }, undefined, new Headers({ "x-request-id": "req_123", ...headers }))

const map = (error: unknown, ctx: ErrorContext = context) => mapError(error, ctx, "request")

describe("mapError", () => {
  it("maps statuses to reasons", () => {
    const cases: ReadonlyArray<[number, string]> = [
      [400, "InvalidRequestError"],
      [401, "AuthenticationError"],
      [402, "QuotaExhaustedError"],
      [403, "AuthenticationError"],
      [404, "InvalidRequestError"],
      [408, "NetworkError"],
      [422, "InvalidRequestError"],
      [429, "RateLimitError"],
      [500, "InternalProviderError"],
      [502, "InternalProviderError"],
      [503, "InternalProviderError"],
      [529, "InternalProviderError"]
    ]
    for (const [status, reason] of cases) {
      assert.strictEqual(map(apiError(status, { message: "x" })).reason._tag, reason, String(status))
    }
  })

  it("keeps the status, the upstream request id and identifier-like codes, never the message", () => {
    const error = map(
      apiError(401, {
        message: "Incorrect API key provided: sk-live-abcdef1234567890",
        type: "invalid_request_error",
        code: "invalid_api_key"
      })
    )
    assert.strictEqual(error.reason._tag, "AuthenticationError")
    if (error.reason._tag === "AuthenticationError") {
      assert.strictEqual(error.reason.kind, "InvalidKey")
      assert.deepStrictEqual(error.reason.http, { response: { status: 401, headers: { "x-request-id": "req_123" } } })
      assert.deepStrictEqual(error.reason.metadata, {
        openai: { status: 401, code: "invalid_api_key", type: "invalid_request_error" }
      })
    }
    assert.notInclude(JSON.stringify(error), "sk-live")
    assert.notInclude(error.message, "sk-live")
    // A "code" that is prose is dropped too.
    const prose = map(apiError(400, { message: "no", code: "your key sk-live-abcdef is wrong" }))
    assert.notInclude(JSON.stringify(prose), "sk-live")
  })

  it("tells an empty wallet from a rate limit, and takes Retry-After", () => {
    const quota = map(apiError(429, { message: "You exceeded your current quota", code: "insufficient_quota" }))
    assert.strictEqual(quota.reason._tag, "QuotaExhaustedError")
    assert.isFalse(quota.isRetryable)
    const limited = map(apiError(429, { code: "rate_limit_exceeded" }, { "retry-after": "20" }))
    assert.strictEqual(limited.reason._tag, "RateLimitError")
    assert.strictEqual(Duration.toMillis(limited.retryAfter ?? Duration.zero), 20_000)
  })

  it("marks context-window errors by code or by message", () => {
    for (const error of [
      apiError(400, { code: "context_length_exceeded", message: "too long" }),
      apiError(400, {
        message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens"
      }),
      apiError(400, { message: "prompt is too long: 210000 tokens > 200000 maximum" })
    ]) {
      const mapped = map(error)
      assert.strictEqual(mapped.reason._tag, "InvalidRequestError")
      assert.strictEqual(
        mapped.reason._tag === "InvalidRequestError" ? mapped.reason.constraint : undefined,
        ModelCatalog.contextTooLongConstraint
      )
    }
    const plain = map(apiError(400, { message: "Invalid value for 'temperature'", param: "temperature" }))
    assert.isUndefined(plain.reason._tag === "InvalidRequestError" ? plain.reason.constraint : "missing")
    assert.strictEqual(plain.reason._tag === "InvalidRequestError" ? plain.reason.parameter : undefined, "temperature")
  })

  it("maps content policy codes", () => {
    assert.strictEqual(map(apiError(400, { code: "content_policy_violation" })).reason._tag, "ContentPolicyError")
  })

  it("reads vendor codes from the quirks (GLM)", () => {
    const glm = { ...context, provider: "glm", errorCodes: { ...openAiQuirks.errorCodes, ...glmCodes } }
    assert.strictEqual(
      map(apiError(429, { code: "1113", message: "余额不足" }), glm).reason._tag,
      "QuotaExhaustedError"
    )
    assert.strictEqual(map(apiError(429, { code: "1302" }), glm).reason._tag, "RateLimitError")
    assert.strictEqual(map(apiError(400, { code: "1301" }), glm).reason._tag, "ContentPolicyError")
    assert.strictEqual(map(apiError(401, { code: "1002" }), glm).reason._tag, "AuthenticationError")
  })

  it("maps an error event inside a stream by the status in its code", () => {
    const error = mapError(
      new APIError(undefined, { message: "Provider returned error", code: 502 }, undefined, new Headers()),
      context,
      "stream"
    )
    assert.strictEqual(error.reason._tag, "InternalProviderError")
    assert.strictEqual(
      error.reason._tag === "InternalProviderError" ? error.reason.http?.response?.status : undefined,
      502
    )
  })

  it("tells timeouts, unreachable servers, lost streams and malformed JSON apart", () => {
    const timeout = map(new APIConnectionTimeoutError())
    assert.strictEqual(timeout.reason._tag, "NetworkError")
    assert.isTrue(
      timeout.reason._tag === "NetworkError" && (timeout.reason.description ?? "").startsWith(timeoutPrefix)
    )
    const refused = map(new APIConnectionError({ message: "connect ECONNREFUSED 10.0.0.1:443" }))
    assert.isTrue(
      refused.reason._tag === "NetworkError" && !(refused.reason.description ?? "").startsWith(timeoutPrefix)
    )
    assert.notInclude(refused.message, "ECONNREFUSED")
    const lost = mapError(new TypeError("terminated"), context, "stream")
    assert.strictEqual(lost.reason._tag, "NetworkError")
    assert.isTrue(lost.isRetryable)
    assert.strictEqual(map(new SyntaxError("Unexpected token")).reason._tag, "InvalidResponseError")
    assert.strictEqual(map(new TypeError("boom")).reason._tag, "UnknownError")
  })
})

const headers = (values: Record<string, string>) => new Headers(values)

describe("parseRetryAfter", () => {
  it("reads milliseconds, seconds and HTTP dates", () => {
    assert.strictEqual(
      Duration.toMillis(parseRetryAfter(headers({ "retry-after-ms": "1500" }), now) ?? Duration.zero),
      1500
    )
    assert.strictEqual(Duration.toMillis(parseRetryAfter(headers({ "retry-after": "7" }), now) ?? Duration.zero), 7000)
    assert.strictEqual(
      Duration.toMillis(
        parseRetryAfter(headers({ "retry-after": "Wed, 25 Nov 2026 12:00:30 GMT" }), now) ?? Duration.zero
      ),
      30_000
    )
  })
  it("ignores what does not parse", () => {
    assert.isUndefined(parseRetryAfter(headers({ "retry-after": "soon" }), now))
    assert.isUndefined(parseRetryAfter(headers({}), now))
    assert.isUndefined(parseRetryAfter(undefined, now))
  })
})
