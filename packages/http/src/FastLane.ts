/**
 * The gateway's hot path beneath the Effect HTTP stack: `POST /v1/chat/completions` on a model,
 * route or experiment. On this machine the HttpApi stack with its middleware costs about twice
 * what a relayed completion itself does per request (see bench/README.md), so the common case is
 * served here, straight on Node's request and response, by the very function the stack's handler
 * calls (`ModelCompletion.serve`: routing, budgets, failover, relay or conversion, the envelope),
 * after the same key cache and request schema.
 *
 * The lane takes a request only when it is that common case, and hands everything else to the
 * full stack unchanged, which answers it exactly as it would without the lane. Before the body
 * is read it needs: the route, a JSON `Content-Type`, a `Content-Length` within the body limit,
 * and a bearer key verified within `Authentication.keyCacheTtl`, or a JWT verified within
 * `Jwt.verifiedTtl` (the first request of a token, or a bad one, goes to the stack, which
 * verifies it and answers 401s), whose role the route allows (`Authorization.permits`; else the
 * stack answers the 403 and audits it). After reading it needs: JSON
 * that passes the request schema, naming no agent. A request that fails these is replayed to the
 * stack with the body it sent, so 400s and agents are the stack's.
 *
 * The lane writes each request's log line as the stack does (`RequestLog.write`), when the answer
 * has been written or the client went away.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type { ModelRouter } from "@polyagent/runtime"
import type { IncomingMessage } from "node:http"
import { Readable } from "node:stream"
import * as Authentication from "./Authentication.ts"
import * as Authorization from "./Authorization.ts"
import * as ChatCompletions from "./ChatCompletions.ts"
import type * as Cors from "./Cors.ts"
import * as Edge from "./Edge.ts"
import * as JsonBody from "./JsonBody.ts"
import { JwtVerifier } from "./Jwt.ts"
import { KeyUsage } from "./KeyUsage.ts"
import { type Lane, Listener } from "./Listener.ts"
import { Readiness } from "./Readiness.ts"
import * as ModelCompletion from "./ModelCompletion.ts"
import * as RateLimit from "./RateLimit.ts"
import * as RelayResponse from "./RelayResponse.ts"
import * as RequestGuards from "./RequestGuards.ts"
import * as RequestLog from "./RequestLog.ts"
import * as ApiError from "./ApiError.ts"

const PATH = "/v1/chat/completions"
const ROUTE = "openai.completions"
const BEARER = "Bearer "

/** What the lane needs to know of the server's settings. */
export interface Options {
  readonly bodyLimit: number
  /** `cors.origins`'s policy: the lane adds the same CORS headers as the stack. */
  readonly cors: Cors.Policy
}

/** The lane, in front of the stack on the server's {@link Listener} for as long as the layer lives. */
export const layer = (options: Options) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const keys = yield* Authentication.KeyCache
      const guards = yield* RequestGuards.RequestGuards
      const limits = yield* RateLimit.RateLimits
      const jwt = yield* JwtVerifier
      const usage = yield* KeyUsage
      const readiness = yield* Readiness
      // The relay's Effects run with the server's services (its logger, above all).
      const context = yield* Effect.context<ModelRouter.ModelRouter>()
      const run = Effect.runForkWith(context)
      const clock = yield* Clock.Clock

      const lane: Lane = (request, response, next) => {
        // HTTP/2 requests (over TLS) are the stack's.
        if (request.method !== "POST" || request.url !== PATH || request.httpVersionMajor !== 1) return false
        // While storage is down the stack answers what needs it (503), the lane included.
        if (!readiness.isUp()) return false
        const headers = request.headers
        const length = Number(headers["content-length"])
        if (!(length <= options.bodyLimit) || !(headers["content-type"] ?? "").includes("json")) return false
        const authorization = headers.authorization
        if (authorization === undefined || !authorization.startsWith(BEARER)) return false
        const token = authorization.slice(BEARER.length)
        const now = Date.now()
        const caller = token.startsWith("pa_")
          ? keys.cached(Authentication.hashKey(token), now)
          : jwt.cached(token, now)
        if (caller === undefined || !Authorization.permits(caller, ROUTE)) return false
        const startedAt = clock.monotonicTimeNanosUnsafe()
        const logLine = (status: number, requestId: string, facts: RequestLog.Facts) =>
          RequestLog.write({
            method: "POST",
            route: PATH,
            status,
            startedAt,
            endedAt: clock.monotonicTimeNanosUnsafe(),
            requestId,
            facts
          })
        if (options.cors.enabled) {
          const corsHeaders = options.cors.actualHeaders(headers.origin)
          if (corsHeaders !== undefined) Edge.setNodeHeaders(response, corsHeaders)
        }
        readBody(
          request,
          (body) => {
            // The stack's checks of a JSON body (UTF-8, depth, surrogates), then its schema.
            const parsed = Result.flatMap(JsonBody.decode(body), ChatCompletions.parseRequest)
            // Bad bodies (400s) and agents are the stack's.
            if (Result.isFailure(parsed) || parsed.success.request.model.startsWith(ChatCompletions.agentPrefix)) {
              return next(replay(request, body))
            }
            const requestId = Edge.requestIdOf(headers["x-request-id"])
            response.setHeader("x-request-id", requestId)
            const facts = new RequestLog.Facts(caller.tenant, Authentication.actorOf(caller))
            // The stack's checks of a verified caller, in its order: the rate limits, then the request
            // guards (IP allow-lists, signature) on the raw body.
            const guarded = guards.check({
              tenant: caller.tenant,
              keyId: Authentication.actorOf(caller),
              headers,
              remoteAddress: request.socket.remoteAddress,
              body: Effect.succeed(body)
            })
            const served = ModelCompletion.serve(response, {
              parsed: parsed.success,
              bodyLength: body.byteLength,
              caller: { payer: Authentication.payerOf(caller), requestId, sessionId: null, models: caller.models },
              stickyKey: parsed.success.request.user ?? caller.subject
            })
            const checked = Effect.flatMap(limits.check(caller, "chat"), (outcome) => {
              Edge.setNodeHeaders(response, outcome.headers)
              if (outcome.refusal !== undefined) {
                return Effect.succeed(RelayResponse.refuse(response, outcome.refusal, requestId))
              }
              return Effect.matchEffect(guarded, {
                onFailure: (refusal) => Effect.sync(() => RelayResponse.refuseWith(response, refusal)),
                onSuccess: () => served
              })
            })
            const answer = Effect.andThen(usage.used(caller, requestId), checked).pipe(
              Effect.provideService(RequestLog.CurrentFacts, facts),
              Effect.provideService(ApiError.RequestId, requestId)
            )
            const fiber = run(Effect.onExit(answer, (exit) => logLine(RequestLog.statusOfExit(exit), requestId, facts)))
            // A client that goes away interrupts the call, which aborts the upstream request.
            response.once("close", () => {
              if (!response.writableEnded) fiber.interruptUnsafe()
            })
          },
          () => {
            const facts = new RequestLog.Facts(caller.tenant, Authentication.actorOf(caller))
            run(logLine(RequestLog.clientClosed, Edge.requestIdOf(headers["x-request-id"]), facts))
          }
        )
        return true
      }

      const listener = yield* Listener
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          listener.lane = lane
        }),
        () =>
          Effect.sync(() => {
            listener.lane = () => false
          })
      )
    })
  )

/**
 * The whole body (its length was checked against the limit already), or `gone` when the client
 * went away before sending all of it.
 */
const readBody = (request: IncomingMessage, then: (body: Buffer) => void, gone: () => void): void => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.once("end", () => then(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)))
  request.once("close", () => {
    if (!request.complete) gone()
  })
}

/**
 * The request again, its body read from `body`: what the stack reads of a request (method, URL,
 * headers, socket, HTTP version) is the original's.
 */
const replay = (request: IncomingMessage, body: Buffer): IncomingMessage =>
  Object.assign(Readable.from([body]), {
    method: request.method,
    url: request.url,
    headers: request.headers,
    rawHeaders: request.rawHeaders,
    httpVersion: request.httpVersion,
    httpVersionMajor: request.httpVersionMajor,
    httpVersionMinor: request.httpVersionMinor,
    socket: request.socket,
    connection: request.socket,
    complete: true,
    trailers: {},
    rawTrailers: []
  }) as unknown as IncomingMessage
