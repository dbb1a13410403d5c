/**
 * What every request passes through, around the API's router: a request id (echoed when
 * the client sent a sane one) on every response, the body-size limit, the error
 * envelope for everything the router or the HttpApi builder would otherwise answer with
 * an empty or plain-text body — unknown routes (404), wrong methods (405 with `Allow`),
 * undecodable bodies, unsupported content types, and unexpected failures (500, logged
 * with the request id, never shown) — and the request's log line (`RequestLog.ts`), once
 * its answer is complete.
 */
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type * as Types from "effect/Types"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import { Identifier } from "@polyagent/runtime"
import { Api, RequestErrors } from "./Api.ts"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as ApiError from "./ApiError.ts"
import * as Cors from "./Cors.ts"
import * as JsonBody from "./JsonBody.ts"
import { Readiness } from "./Readiness.ts"
import * as RequestLog from "./RequestLog.ts"

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The header that names the model that answered, after routing and failover (see ../shared/API.md). */
export const modelHeader = "x-polyagent-model"

/** The request's id: the client's `X-Request-Id` when it is a sane one, else a new one. */
export const requestIdOf = (incoming: string | ReadonlyArray<string> | undefined): string =>
  typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : Identifier.makeUnsafe("req")

/**
 * Sets `headers` on Node's response (the stack's and the lane's alike) before its head is written:
 * Node merges them into the head of whatever answer is written, by the stack or by hand.
 */
export const setNodeHeaders = (
  response: { readonly setHeader: (name: string, value: string) => unknown },
  headers: Readonly<Record<string, string>>
): void => {
  for (const name in headers) response.setHeader(name, headers[name] ?? "")
}

interface Route {
  readonly method: string
  /** As the API declares it, e.g. `/v1/sessions/:id`. */
  readonly path: string
  readonly pattern: RegExp
}

/** The API's routes, for telling a wrong method (405) from an unknown path (404), and for the log. */
const routes: ReadonlyArray<Route> = (() => {
  const found: Array<Route> = []
  const add = (method: string, path: string) => {
    const pattern = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+")
    found.push({ method, path, pattern: new RegExp(`^${pattern}$`) })
  }
  HttpApi.reflect(Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path) })
  add("GET", "/openapi.json")
  add("GET", "/docs")
  return found
})()

// Most requests name a route without parameters: one lookup finds those.
const fixedRoutes = new Set(routes.filter((route) => !route.path.includes(":")).map((r) => `${r.method} ${r.path}`))

const allowedMethods = (path: string): ReadonlyArray<string> =>
  routes.filter((route) => route.pattern.test(path)).map((route) => route.method)

/**
 * The route of a request as its log line names it: the pattern of the route it matched (the
 * path's, for a wrong method), else its path, bounded (`RequestLog.unknownRoute`).
 */
export const routeOf = (method: string, url: string): string => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  if (fixedRoutes.has(`${method} ${path}`)) return path
  let other: string | undefined
  for (const route of routes) {
    if (!route.pattern.test(path)) continue
    if (route.method === method) return route.path
    other ??= route.path
  }
  return other ?? RequestLog.unknownRoute(path)
}

const respond = (type: ApiError.ErrorType, message: string, requestId: string, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(ApiError.envelope(type, message, requestId), {
    status: ApiError.statusOf[type],
    ...(headers === undefined ? {} : { headers })
  })

/** Whether the client of `request` closed its connection before its answer. */
const clientGone = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
  return socket === null || socket.destroyed
}

/** The answer for a failure that escaped the handlers. */
const fromCause = (cause: Cause.Cause<unknown>, request: HttpServerRequest.HttpServerRequest, requestId: string) => {
  if (Cause.hasInterruptsOnly(cause)) {
    // The client went away: nobody reads this answer, and it is no server error.
    if (clientGone(request)) return Effect.succeed(HttpServerResponse.empty({ status: RequestLog.clientClosed }))
    // Work the request waited on was interrupted (a session stopped mid-turn because its process is
    // stopping or lost its shard): worth a retry.
    return Effect.succeed(respond("unavailable", "the request was interrupted; try again", requestId))
  }
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
      if (reason.cause instanceof JsonBody.InvalidBody) {
        return Effect.succeed(respond("invalid_request", reason.cause.message, requestId))
      }
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

/** Routes that answer without storage: health, and the API's description. */
const withoutStorage = new Set(["/v1/health", "/openapi.json", "/docs"])
const needsStorage = (url: string): boolean => !withoutStorage.has(url.split("?", 1)[0] ?? "")

/** What the edge needs to know of the server's settings. */
export interface Options {
  readonly bodyLimit: number
  /** `cors.origins`'s policy. */
  readonly cors: Cors.Policy
}

/** The answer of a CORS preflight: 204 with the CORS headers, or 403 for an origin not allowed. */
const preflight = (policy: Cors.Policy, request: HttpServerRequest.HttpServerRequest, requestId: string) => {
  const origin = request.headers["origin"] ?? ""
  const headers = policy.preflightHeaders(origin, request.headers["access-control-request-headers"])
  return headers === undefined
    ? respond("forbidden", `origin ${origin.slice(0, 128)} is not allowed (cors.origins)`, requestId)
    : HttpServerResponse.empty({ status: 204, headers })
}

/** The edge as a global router middleware: it sees every request, matched or not. */
export const layer = (options: Options) =>
  HttpRouter.middleware(
    Effect.map(
      Effect.service(Readiness),
      (readiness) =>
        (
          app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>
        ): Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled, HttpServerRequest.HttpServerRequest> =>
          Effect.gen(function* () {
            const startedAt = yield* Clock.monotonicTimeNanos
            const request = yield* HttpServerRequest.HttpServerRequest
            // Each read of `request.headers` copies them.
            const headers = request.headers
            const requestId = requestIdOf(headers["x-request-id"])
            const declared = Number(headers["content-length"] ?? 0)
            const facts = new RequestLog.Facts()
            const logLine = (status: number) =>
              Effect.flatMap(Clock.monotonicTimeNanos, (endedAt) =>
                RequestLog.write({
                  method: request.method,
                  route: routeOf(request.method, request.url),
                  status,
                  startedAt,
                  endedAt,
                  requestId,
                  facts
                })
              )
            let response: HttpServerResponse.HttpServerResponse
            const cors = options.cors
            if (cors.enabled) {
              const corsHeaders = cors.actualHeaders(headers["origin"])
              // On Node's response, so that answers the handlers write themselves (relays) carry them too.
              if (corsHeaders !== undefined) {
                setNodeHeaders(NodeHttpServerRequest.toServerResponse(request), corsHeaders)
              }
            }
            if (cors.enabled && Cors.isPreflight(request.method, headers)) {
              response = preflight(cors, request, requestId)
            } else if (!readiness.isUp() && needsStorage(request.url)) {
              response = respond("unavailable", "storage is unavailable; try again shortly", requestId)
            } else if (declared > options.bodyLimit) {
              response = respond(
                "payload_too_large",
                `the request body is over the limit of ${options.bodyLimit} bytes`,
                requestId
              )
            } else {
              response = yield* app.pipe(
                // JSON bodies are checked (UTF-8, depth, surrogates) before anything parses them.
                Effect.provideService(HttpServerRequest.HttpServerRequest, JsonBody.checkedRequest(request)),
                Effect.provideService(ApiError.RequestId, requestId),
                Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(options.bodyLimit)),
                Effect.provideService(RequestLog.CurrentFacts, facts),
                Effect.catchCause((cause) => fromCause(cause, request, requestId)),
                Effect.onInterrupt(() => logLine(RequestLog.clientClosed))
              )
              // The HttpApi builder answers an unsupported content type with a plain-text 415.
              if (response.status === 415) {
                response = respond(
                  "invalid_request",
                  "the body must be JSON (Content-Type: application/json)",
                  requestId
                )
              }
            }
            response = HttpServerResponse.setHeader(response, "x-request-id", requestId)
            if (facts.model !== undefined) response = HttpServerResponse.setHeader(response, modelHeader, facts.model)
            if (facts.retryAfter !== undefined && response.status >= 400) {
              response = HttpServerResponse.setHeader(response, "retry-after", String(facts.retryAfter))
            }
            const body = response.body
            if (body._tag !== "Stream") {
              yield* logLine(response.status)
              return response
            }
            // A stream is logged when it ends, with the whole answer's duration.
            const status = response.status
            const logged = Stream.onExit(body.stream, (exit) =>
              logLine(exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause) ? RequestLog.clientClosed : status)
            )
            return HttpServerResponse.setBody(response, HttpBody.stream(logged, body.contentType, body.contentLength))
          })
    ),
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
