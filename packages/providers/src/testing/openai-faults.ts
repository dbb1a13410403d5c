/**
 * The HTTP errors of the fake OpenAI in `openai-wire.ts`: each answers with the status, headers
 * and `{"error": {message, type, param, code}}` body OpenAI sends (GLM's, for its balance error).
 * The 401 echoes the key it was sent, as OpenAI's does in part.
 * The faults that break an answer (hang, drop, malformed, truncated, stall, stream error) are part of
 * answering and stay in `openai-wire.ts`.
 */
import type { ServerResponse } from "node:http"
import type { Received } from "./FakeUpstream.ts"

/** 401 `invalid_api_key`. OpenAI's 401 repeats (most of) the key it got; this fake repeats all of it. */
export const unauthorized = (request: Received, response: ServerResponse): void => {
  const key = (request.headers.authorization ?? "").replace(/^Bearer /, "")
  error(
    response,
    401,
    `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    "invalid_request_error",
    "invalid_api_key"
  )
}

/** 403 `model_not_allowed`. */
export const forbidden = (response: ServerResponse): void =>
  error(response, 403, "You are not allowed to sample from this model", "invalid_request_error", "model_not_allowed")

/** 429 `rate_limit_exceeded` with `Retry-After: 7` and the `x-ratelimit-*` headers. */
export const rateLimited = (response: ServerResponse): void =>
  error(
    response,
    429,
    "Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1.",
    "requests",
    "rate_limit_exceeded",
    { "retry-after": "7", "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0" }
  )

/** 429 `insufficient_quota`. */
export const quota = (response: ServerResponse): void =>
  error(
    response,
    429,
    "You exceeded your current quota, please check your plan and billing details.",
    "insufficient_quota",
    "insufficient_quota"
  )

/** 400 `context_length_exceeded` on `messages`. */
export const contextTooLong = (response: ServerResponse): void =>
  error(
    response,
    400,
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 130211 tokens. Please reduce the length of the messages.",
    "invalid_request_error",
    "context_length_exceeded",
    {},
    "messages"
  )

/** 500 `server_error`. */
export const serverError = (response: ServerResponse): void =>
  error(response, 500, "The server had an error while processing your request. Sorry about that!", "server_error", null)

/** 503 "The engine is currently overloaded". */
export const overloaded = (response: ServerResponse): void =>
  error(response, 503, "The engine is currently overloaded, please try again later", "server_error", null)

/** GLM's 429 with business code 1113 (balance exhausted). */
export const glmBalance = (response: ServerResponse): void =>
  error(response, 429, "余额不足或无可用资源包,请充值。", null, "1113")

const error = (
  response: ServerResponse,
  status: number,
  message: string,
  type: string | null,
  code: string | null,
  headers: Record<string, string> = {},
  param: string | null = null
): void => {
  response.writeHead(status, { "content-type": "application/json", "x-request-id": "req_fake_error", ...headers })
  response.end(JSON.stringify({ error: { message, type, param, code } }))
}
