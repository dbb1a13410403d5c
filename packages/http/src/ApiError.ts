/**
 * The error envelope of ../shared/API.md — `{ error: { type, message, request_id } }` —
 * as one schema class per status, so every endpoint declares the errors it can answer
 * with and the OpenAPI document lists them. Messages are ours: never a stack, SQL, or an
 * upstream provider's text.
 */
import { RequestId as RuntimeRequestId } from "@polyagent/runtime"
import type { ModelCatalog, SessionProtocol, Storage } from "@polyagent/runtime"
import * as Effect from "effect/Effect"
import * as RequestLog from "./RequestLog.ts"
import * as Schema from "effect/Schema"

/** The request id of the request being served; the edge sets it for every request. */
export const RequestId = RuntimeRequestId.RequestId

const Body = <const Type extends string>(type: Type) =>
  Schema.Struct({ type: Schema.Literal(type), message: Schema.String, request_id: Schema.String })

export class InvalidRequest extends Schema.Error<InvalidRequest>("@polyagent/http/InvalidRequest")(
  { error: Body("invalid_request") },
  { httpApiStatus: 400, description: "The request is malformed or breaks a limit" }
) {}

export class Unauthenticated extends Schema.Error<Unauthenticated>("@polyagent/http/Unauthenticated")(
  { error: Body("unauthenticated") },
  { httpApiStatus: 401, description: "No valid credential" }
) {}

export class BudgetExceeded extends Schema.Error<BudgetExceeded>("@polyagent/http/BudgetExceeded")(
  { error: Body("budget_exceeded") },
  { httpApiStatus: 402, description: "A tenant or key budget would be overspent; the message says which" }
) {}

export class Forbidden extends Schema.Error<Forbidden>("@polyagent/http/Forbidden")(
  { error: Body("forbidden") },
  { httpApiStatus: 403, description: "The credential's role does not allow this" }
) {}

export class NotFound extends Schema.Error<NotFound>("@polyagent/http/NotFound")(
  { error: Body("not_found") },
  { httpApiStatus: 404, description: "No such resource for this tenant" }
) {}

export class Conflict extends Schema.Error<Conflict>("@polyagent/http/Conflict")(
  { error: Body("conflict") },
  { httpApiStatus: 409, description: "The request contradicts the resource's state" }
) {}

export class PayloadTooLarge extends Schema.Error<PayloadTooLarge>("@polyagent/http/PayloadTooLarge")(
  { error: Body("payload_too_large") },
  { httpApiStatus: 413, description: "The body is over the configured limit" }
) {}

export class RateLimited extends Schema.Error<RateLimited>("@polyagent/http/RateLimited")(
  { error: Body("rate_limited") },
  { httpApiStatus: 429, description: "Too many requests; `Retry-After` says when to try again" }
) {}

export class Internal extends Schema.Error<Internal>("@polyagent/http/Internal")(
  { error: Body("internal") },
  { httpApiStatus: 500, description: "An unexpected failure; the request id finds it in the logs" }
) {}

export class UpstreamError extends Schema.Error<UpstreamError>("@polyagent/http/UpstreamError")(
  { error: Body("upstream_error") },
  { httpApiStatus: 502, description: "The model provider failed" }
) {}

export class Unavailable extends Schema.Error<Unavailable>("@polyagent/http/Unavailable")(
  { error: Body("unavailable") },
  { httpApiStatus: 503, description: "The server cannot take this request now" }
) {}

export class UpstreamTimeout extends Schema.Error<UpstreamTimeout>("@polyagent/http/UpstreamTimeout")(
  { error: Body("upstream_timeout") },
  { httpApiStatus: 504, description: "The turn did not finish in time" }
) {}

/** Any envelope error. */
export type ApiError =
  | InvalidRequest
  | Unauthenticated
  | BudgetExceeded
  | Forbidden
  | NotFound
  | Conflict
  | PayloadTooLarge
  | RateLimited
  | Internal
  | UpstreamError
  | Unavailable
  | UpstreamTimeout

const classes = {
  invalid_request: InvalidRequest,
  unauthenticated: Unauthenticated,
  budget_exceeded: BudgetExceeded,
  forbidden: Forbidden,
  not_found: NotFound,
  conflict: Conflict,
  payload_too_large: PayloadTooLarge,
  rate_limited: RateLimited,
  internal: Internal,
  upstream_error: UpstreamError,
  unavailable: Unavailable,
  upstream_timeout: UpstreamTimeout
} as const

/** The error `type`s of the envelope. */
export type ErrorType = keyof typeof classes

/** The HTTP status of each error type. */
export const statusOf: Record<ErrorType, number> = {
  invalid_request: 400,
  unauthenticated: 401,
  budget_exceeded: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  upstream_error: 502,
  unavailable: 503,
  upstream_timeout: 504
}

/** The envelope as plain JSON, for answers made outside the HttpApi (404, 405, SSE `error` events). */
export const envelope = (type: ErrorType, message: string, requestId: string) => ({
  error: { type, message, request_id: requestId }
})

/** The message of an unexpected failure: the request id finds it in the logs. */
export const internalMessage = (requestId: string): string =>
  `internal error; quote request id ${requestId} when reporting it`

type BodyOf<T extends ErrorType> = { readonly type: T; readonly message: string; readonly request_id: string }
type InstanceOf<T extends ErrorType> = InstanceType<(typeof classes)[T]>

const constructors: { readonly [T in ErrorType]: (error: BodyOf<T>) => InstanceOf<T> } = {
  invalid_request: (error) => new InvalidRequest({ error }),
  unauthenticated: (error) => new Unauthenticated({ error }),
  budget_exceeded: (error) => new BudgetExceeded({ error }),
  forbidden: (error) => new Forbidden({ error }),
  not_found: (error) => new NotFound({ error }),
  conflict: (error) => new Conflict({ error }),
  payload_too_large: (error) => new PayloadTooLarge({ error }),
  rate_limited: (error) => new RateLimited({ error }),
  internal: (error) => new Internal({ error }),
  upstream_error: (error) => new UpstreamError({ error }),
  unavailable: (error) => new Unavailable({ error }),
  upstream_timeout: (error) => new UpstreamTimeout({ error })
}

/** An envelope error of `type` for the current request. */
export const make = <T extends ErrorType>(type: T, message: string): Effect.Effect<InstanceOf<T>> =>
  Effect.map(Effect.service(RequestId), (requestId) => {
    const construct: (error: BodyOf<T>) => InstanceOf<T> = constructors[type]
    return construct({ type, message, request_id: requestId })
  })

/** Fails with an envelope error of `type` for the current request. */
export const fail = <T extends ErrorType>(type: T, message: string) => Effect.flatMap(make(type, message), Effect.fail)

/**
 * A storage failure as the client sees it, logged in full: `unavailable` (503, try again) when
 * the database could not be reached, else `internal` without details.
 */
export const storageFailed = (error: Storage.StorageError): Effect.Effect<never, Internal | Unavailable> => {
  const answer: Effect.Effect<never, Internal | Unavailable> =
    error.unavailable === true ? fail("unavailable", storageAnswer(error).message) : fail("internal", "storage failed")
  return Effect.logError("storage failed", error).pipe(Effect.andThen(answer))
}

/** The types a failed turn or model call is answered with. */
export type TurnErrorType =
  | "invalid_request"
  | "budget_exceeded"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "internal"
  | "upstream_error"
  | "unavailable"
  | "upstream_timeout"

/** How a failed model call or turn is answered: its type, message and `Retry-After`, if any. */
export interface Answer {
  readonly type: TurnErrorType
  readonly message: string
  /** Whole seconds for `Retry-After`. */
  readonly retryAfterSeconds?: number | undefined
}

/**
 * How a failed model call is answered: a rate limit as `rate_limited` with the provider's wait
 * in whole seconds (for `Retry-After`), no model to call (every breaker open) as `unavailable`, a
 * timeout as `upstream_timeout`, anything else as `upstream_error`. The message is the error's own,
 * which never quotes the provider.
 */
export const ofModelError = (error: ModelCatalog.ModelError): Answer => {
  switch (error.reason) {
    case "rate_limited":
      return {
        type: "rate_limited",
        message: error.message,
        retryAfterSeconds: Math.max(1, Math.ceil((error.retry_after_ms ?? 1000) / 1000))
      }
    case "circuit_open":
      return { type: "unavailable", message: error.message, retryAfterSeconds: 1 }
    case "timeout":
      return { type: "upstream_timeout", message: error.message }
    default:
      return { type: "upstream_error", message: error.message }
  }
}

/**
 * The one mapping of a failed turn (or model call) onto the envelope, for every route and stream:
 * a storage failure is logged and answered by {@link storageFailed}'s rules.
 */
export const ofTurnError = (error: SessionProtocol.TurnError): Effect.Effect<Answer> => {
  switch (error._tag) {
    case "SessionNotFound":
    case "AgentNotFound":
    case "ModelNotFound":
      return Effect.succeed({ type: "not_found", message: error.message })
    case "SessionAgentConflict":
    case "IdempotencyConflict":
      return Effect.succeed({ type: "conflict", message: error.message })
    case "ContextTooLong":
    case "NoCapableModel":
    // A safety policy stopped the request or its answer: the same type on every route (README, Safety).
    case "SafetyStop":
      return Effect.succeed({ type: "invalid_request", message: error.message })
    case "BudgetExceeded":
      return Effect.succeed({ type: "budget_exceeded", message: error.message })
    case "ModelNotAllowed":
      return Effect.succeed({ type: "forbidden", message: error.message })
    case "ModelError":
      return Effect.succeed(ofModelError(error))
    case "TurnTimeout":
      return Effect.succeed({ type: "upstream_timeout", message: error.message })
    case "StorageError":
      return Effect.as(Effect.logError("storage failed", error), storageAnswer(error))
  }
}

const storageAnswer = (error: Storage.StorageError): Answer & { readonly type: "unavailable" | "internal" } =>
  error.unavailable === true
    ? { type: "unavailable", message: "storage is unavailable; try again shortly" }
    : { type: "internal", message: "storage failed" }

/**
 * Fails the current request with `answer`; its `Retry-After` goes on the response (the edge
 * writes it, see `RequestLog.Facts`).
 */
export const failWith = (answer: Answer) =>
  Effect.andThen(
    answer.retryAfterSeconds === undefined ? Effect.void : RequestLog.recordRetryAfter(answer.retryAfterSeconds),
    fail(answer.type, answer.message)
  )

/** Fails the current request as {@link ofTurnError} answers `error`. */
export const failTurn = (error: SessionProtocol.TurnError) => Effect.flatMap(ofTurnError(error), failWith)
