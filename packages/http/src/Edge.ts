/**
 * What every request passes through, around the API's router: a request id (echoed when
 * the client sent a sane one) on every response, the body-size limit, and the error
 * envelope for everything the router or the HttpApi builder would otherwise answer with
 * an empty or plain-text body — unknown routes (404), wrong methods (405 with `Allow`),
 * undecodable bodies, unsupported content types, and unexpected failures (500, logged
 * with the request id, never shown).
 */
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Types from "effect/Types"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import { Identifier } from "@polyagent/runtime"
import { Api, RequestErrors } from "./Api.ts"
import * as ApiError from "./ApiError.ts"

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The request's id: the client's `X-Request-Id` when it is a sane one, else a new one. */
export const requestIdOf = (incoming: string | ReadonlyArray<string> | undefined): string =>
  typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : Identifier.makeUnsafe("req")

interface Route {
  readonly method: string
  readonly pattern: RegExp
}

/** The API's routes, for telling a wrong method (405) from an unknown path (404). */
const routes: ReadonlyArray<Route> = (() => {
  const found: Array<Route> = []
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const pattern = endpoint.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+")
      found.push({ method: endpoint.method, pattern: new RegExp(`^${pattern}$`) })
    }
  })
  found.push({ method: "GET", pattern: /^\/openapi\.json$/ }, { method: "GET", pattern: /^\/docs$/ })
  return found
})()

const allowedMethods = (path: string): ReadonlyArray<string> =>
  routes.filter((route) => route.pattern.test(path)).map((route) => route.method)

const respond = (type: ApiError.ErrorType, message: string, requestId: string, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(ApiError.envelope(type, message, requestId), {
    status: ApiError.statusOf[type],
    ...(headers === undefined ? {} : { headers })
  })

/** The answer for a failure that escaped the handlers. */
const fromCause = (cause: Cause.Cause<unknown>, request: HttpServerRequest.HttpServerRequest, requestId: string) => {
  // The client went away: nobody reads this answer, and it is no server error.
  if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(HttpServerResponse.empty({ status: 499 }))
  // The HttpApi builder turns some body-read failures into defects, so look at both.
  const error = Cause.squash(cause)
  if (HttpServerError.isHttpServerError(error)) {
    const reason = error.reason
    if (reason._tag === "RouteNotFound") {
      const path = request.url.split("?", 1)[0] ?? "/"
      const allowed = allowedMethods(path)
      return Effect.succeed(
        allowed.length === 0
          ? respond("not_found", `no route for ${request.method} ${path}`, requestId)
          : HttpServerResponse.jsonUnsafe(
              ApiError.envelope("invalid_request", `method ${request.method} is not allowed on ${path}`, requestId),
              { status: 405, headers: { allow: allowed.join(", ") } }
            )
      )
    }
    if (reason._tag === "RequestParseError") {
      return Effect.succeed(
        reason.reason === "BodyTooLarge"
          ? respond("payload_too_large", "the request body is over the limit", requestId)
          : respond("invalid_request", "the request body could not be read", requestId)
      )
    }
  }
  return Effect.logError("request failed", cause).pipe(
    Effect.annotateLogs({ request_id: requestId }),
    Effect.as(respond("internal", ApiError.internalMessage(requestId), requestId))
  )
}

/** The edge as a global router middleware: it sees every request, matched or not. */
export const layer = (options: { readonly bodyLimit: number }) =>
  HttpRouter.middleware(
    (app): Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled, HttpServerRequest.HttpServerRequest> =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        // Each read of `request.headers` copies them.
        const headers = request.headers
        const requestId = requestIdOf(headers["x-request-id"])
        const declared = Number(headers["content-length"] ?? 0)
        let response: HttpServerResponse.HttpServerResponse
        if (declared > options.bodyLimit) {
          response = respond(
            "payload_too_large",
            `the request body is over the limit of ${options.bodyLimit} bytes`,
            requestId
          )
        } else {
          response = yield* app.pipe(
            Effect.provideService(ApiError.RequestId, requestId),
            Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(options.bodyLimit)),
            Effect.catchCause((cause) => fromCause(cause, request, requestId))
          )
          // The HttpApi builder answers an unsupported content type with a plain-text 415.
          if (response.status === 415) {
            response = respond("invalid_request", "the body must be JSON (Content-Type: application/json)", requestId)
          }
        }
        return HttpServerResponse.setHeader(response, "x-request-id", requestId)
      }),
    { global: true }
  )

/** Request decoding failures become `invalid_request` with the offending field named. */
export const layerRequestErrors: Layer.Layer<RequestErrors> = HttpApiMiddleware.layerSchemaErrorTransform(
  RequestErrors,
  (error) =>
    error.kind === "Body" || error.kind === "ResponseHeaders"
      ? Effect.logError("response encoding failed", error).pipe(
          Effect.andThen(ApiError.fail("internal", "internal error"))
        )
      : ApiError.fail("invalid_request", `invalid ${error.kind.toLowerCase()}: ${error.cause.message}`)
)
