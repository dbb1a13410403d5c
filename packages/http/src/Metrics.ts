/**
 * `GET /metrics`: the server's Effect metrics in Prometheus' text format — requests by route and
 * status and their durations (`RequestLog.ts`), upstream failures (`UpstreamLog`), tokens and cost
 * (`Budgets`), rate-limit store errors, safety decisions, and whatever else the server counts.
 * It needs a bearer token, of any role, unless `metrics.public: true` (../shared/API.md). A series
 * never carries a tenant, a key or an id: one per route, model or reason.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"
import type { JwtVerifier } from "./Jwt.ts"

/** Where the metrics are served. */
export const path = "/metrics"

const BEARER = "Bearer "

/** The scrape's answer: Prometheus text, version 0.0.4. */
const scrape = Effect.map(PrometheusMetrics.format(), (text) =>
  HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
)

/** The envelope of a refusal, as the API's routes answer it. */
const refusal = (error: ApiError.ApiError) =>
  HttpServerResponse.jsonUnsafe({ error: error.error }, { status: ApiError.statusOf[error.error.type] })

/**
 * Serves {@link path}: to any caller with `public`, else to a caller whose bearer token
 * authenticates (`Authentication.authenticate`: an API key or a JWT, any role).
 *
 * Gotchas: a scrape is not rate-limited and is not written to the audit log; it is logged and
 * counted like any request.
 */
export const layer = (options: { readonly public: boolean }) =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const services = yield* Effect.context<Authentication.KeyCache | JwtVerifier>()
      yield* router.add(
        "GET",
        path,
        Effect.gen(function* () {
          if (options.public) return yield* scrape
          const authorization = (yield* HttpServerRequest.HttpServerRequest).headers.authorization ?? ""
          const authenticated = authorization.startsWith(BEARER)
            ? yield* Effect.exit(Authentication.authenticate(authorization.slice(BEARER.length)))
            : Exit.fail(yield* ApiError.make("unauthenticated", Authentication.unauthenticatedMessage))
          if (Exit.isFailure(authenticated)) {
            const error = Exit.findErrorOption(authenticated)
            return error._tag === "Some" ? refusal(error.value) : yield* Effect.failCause(authenticated.cause)
          }
          return yield* scrape
        }).pipe(Effect.provide(services))
      )
    })
  )
