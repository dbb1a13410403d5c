/**
 * A completion written straight to Node's response, by the fast lane and by the stack alike. A
 * failure before the answer began is the envelope with its HTTP status (`ApiError.ofTurnError`: a
 * rate limit with `Retry-After`, a spent budget 402), as OpenAI answers a failed streamed request
 * too; a stream that fails once its first bytes went out ends with an `error` event in the
 * envelope (after a `safety` event when a safety policy stopped it, which is told in events even
 * before the first byte). Interrupting the Effect (a client that went away) writes nothing. Both answer the HTTP
 * status they wrote, for the request's log line.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { SessionProtocol } from "@polyagent/runtime"
import type { ServerResponse } from "node:http"
import * as ApiError from "./ApiError.ts"
import * as RequestLog from "./RequestLog.ts"

/** A non-streamed answer: the upstream's JSON. */
export const complete = (
  response: ServerResponse,
  answer: Effect.Effect<Uint8Array, SessionProtocol.TurnError>,
  requestId: string
): Effect.Effect<number> =>
  Effect.matchCauseEffect(answer, {
    onSuccess: (bytes) =>
      Effect.sync(() => {
        response.writeHead(200, { "content-type": "application/json", "content-length": bytes.byteLength })
        response.end(bytes)
        return 200
      }),
    onFailure: (cause) => failed(response, cause, requestId)
  })

/** A streamed answer: the upstream's SSE bytes as they arrive. */
export const stream = (
  response: ServerResponse,
  events: Stream.Stream<Uint8Array, SessionProtocol.TurnError>,
  requestId: string
): Effect.Effect<number> => {
  const start = () => {
    if (!response.headersSent) response.writeHead(200, { "content-type": "text/event-stream" })
  }
  const write = (chunk: Uint8Array) => {
    start()
    return response.write(chunk) ? Effect.void : waitForDrain(response)
  }
  return Stream.runForEach(events, write).pipe(
    Effect.matchCauseEffect({
      onSuccess: () =>
        Effect.sync(() => {
          start()
          response.end()
          return 200
        }),
      onFailure: (cause) => {
        const error = Cause.findErrorOption(cause)
        // A stream a safety policy stopped, even before its first byte, ends with `safety` then `error`.
        const stopped = error._tag === "Some" && error.value._tag === "SafetyStop" ? error.value : undefined
        if (stopped === undefined && (!response.headersSent || error._tag === "None")) {
          return failed(response, cause, requestId)
        }
        if (error._tag === "None") return failed(response, cause, requestId)
        return Effect.map(ApiError.ofTurnError(error.value), (answer) => {
          start()
          const safety =
            stopped === undefined
              ? ""
              : `\n\nevent: safety\ndata: ${JSON.stringify({ action: stopped.action, category: stopped.category })}`
          response.end(safety + errorEvent(answer, requestId))
          return response.statusCode
        })
      }
    })
  )
}

/** The `error` event that ends a stream; the blank line first ends an event cut short. */
const errorEvent = (answer: ApiError.Answer, requestId: string): string =>
  `\n\nevent: error\ndata: ${JSON.stringify(ApiError.envelope(answer.type, answer.message, requestId))}\n\n`

const waitForDrain = (response: ServerResponse) =>
  Effect.callback<void>((resume) => {
    const drained = () => resume(Effect.void)
    response.once("drain", drained)
    return Effect.sync(() => response.off("drain", drained))
  })

/** Answers `error` before anything was written: its envelope and status. */
export const fail = (
  response: ServerResponse,
  error: SessionProtocol.TurnError,
  requestId: string
): Effect.Effect<number> =>
  Effect.map(ApiError.ofTurnError(error), ({ type, message, retryAfterSeconds }) =>
    answer(response, ApiError.statusOf[type], ApiError.envelope(type, message, requestId), retryAfterSeconds)
  )

/** Answers `answer` (a refusal of the edge's, such as a rate limit) before anything was written; answers its status. */
export const refuse = (response: ServerResponse, refusal: ApiError.Answer, requestId: string): number =>
  answer(
    response,
    ApiError.statusOf[refusal.type],
    ApiError.envelope(refusal.type, refusal.message, requestId),
    refusal.retryAfterSeconds
  )

/** Answers an envelope error of the edge (a request guard's refusal) before anything was written; answers its status. */
export const refuseWith = (response: ServerResponse, error: ApiError.ApiError): number =>
  answer(response, ApiError.statusOf[error.error.type], { error: error.error })

/** A failed call's answer: the envelope of a turn's error, or a logged 500 for anything else. */
const failed = (
  response: ServerResponse,
  cause: Cause.Cause<SessionProtocol.TurnError>,
  requestId: string
): Effect.Effect<number> => {
  // Nobody reads an answer now: the client went away.
  if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(RequestLog.clientClosed)
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") return fail(response, error.value, requestId)
  return Effect.logError("request failed", cause).pipe(
    Effect.annotateLogs({ request_id: requestId }),
    Effect.andThen(
      Effect.sync(() =>
        answer(response, 500, ApiError.envelope("internal", ApiError.internalMessage(requestId), requestId))
      )
    )
  )
}

/** Writes the envelope; answers the status the client got. */
const answer = (response: ServerResponse, status: number, body: object, retryAfterSeconds?: number): number => {
  // A stream that broke after its headers can only be cut off.
  if (response.headersSent) {
    response.destroy()
    return response.statusCode
  }
  const text = JSON.stringify(body)
  // With its length, as the stack sends its envelopes (not chunked).
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...(retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) })
  })
  response.end(text)
  return status
}
