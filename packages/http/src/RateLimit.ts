/**
 * Rate limits at the edge: which token buckets a request takes from (`RateLimiter` in the
 * runtime keeps them), and how the decision is answered. One {@link RateLimits.check}, called by
 * the stack right after authentication and by the fast lane right before its upstream call, so a
 * request is counted once on either path and answered with the same headers:
 *
 * - every answer of a limited route carries `X-RateLimit-Limit` (the burst of the tightest bucket)
 *   and `X-RateLimit-Remaining` (its whole tokens left);
 * - a refusal is 429 `rate_limited` with `Retry-After` (seconds, rounded up);
 * - a store that cannot be read (Redis down) lets the request pass without those headers
 *   (`rate_limit.on_redis_error: open`) or answers 503 `unavailable` (`closed`).
 *
 * The buckets of a request: its principal's (`rate_limit.requests_per_minute`/`burst`, or the
 * principal's own limit), its tenant's (`rate_limit.tenant`) and its principal's for the route's
 * class (`rate_limit.routes.<class>`), each when configured. Requests without a principal (401s,
 * health, docs) take from none.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type AppConfig, RateLimiter } from "@polyagent/runtime"
import type * as ApiError from "./ApiError.ts"

/** Who is limited: a principal's tenant and subject, and its own limit when it has one. */
export interface Caller {
  readonly tenant: string
  readonly subject: string
  /** The principal's own limit (an API key's); absent or `null`: the configured one. */
  readonly rateLimit?: RateLimiter.Limit | null | undefined
}

/** Why a request is refused: 429 over its limit, 503 when the limits cannot be checked (fail closed). */
export interface Refusal extends ApiError.Answer {
  readonly type: "rate_limited" | "unavailable"
  readonly retryAfterSeconds: number
}

/** What the edge does with a request after its check: headers to send, and a refusal if any. */
export interface Outcome {
  readonly headers: Readonly<Record<string, string>>
  readonly refusal: Refusal | undefined
}

/** The class of a route for `rate_limit.routes`: model calls, administration, reads, other changes. */
export const routeClassOf = (method: string, path: string): AppConfig.RouteClass => {
  if (method === "POST" && (path.startsWith("/v1/chat") || path === "/v1/messages")) return "chat"
  if (path.startsWith("/v1/keys") || path.startsWith("/v1/audit") || path.startsWith("/v1/tenants")) return "admin"
  return method === "GET" || method === "HEAD" ? "read" : "write"
}

const unlimited: Outcome = { headers: {}, refusal: undefined }

/** The answer of a take. */
export const outcomeOf = (decision: RateLimiter.Decision): Outcome => {
  switch (decision._tag) {
    case "Allowed":
      return {
        headers: { "x-ratelimit-limit": String(decision.limit), "x-ratelimit-remaining": String(decision.remaining) },
        refusal: undefined
      }
    case "Denied": {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000))
      return {
        headers: { "x-ratelimit-limit": String(decision.limit), "x-ratelimit-remaining": "0" },
        refusal: {
          type: "rate_limited",
          message: `rate limit exceeded (bursts of ${decision.limit}); retry after ${seconds} s`,
          retryAfterSeconds: seconds
        }
      }
    }
    case "Unchecked":
      return unlimited
  }
}

const storeDown: Outcome = {
  headers: {},
  refusal: {
    type: "unavailable",
    message: "rate limits cannot be checked right now; try again shortly",
    retryAfterSeconds: 1
  }
}

/**
 * The edge's rate limits.
 *
 * When to use: once per authenticated request, before its work (the stack: in authentication;
 * the lane: before the upstream call); set {@link Outcome.headers} on the response, and answer
 * {@link Outcome.refusal} when there is one.
 *
 * Gotchas: calling it twice for one request takes two tokens.
 */
export class RateLimits extends Context.Service<
  RateLimits,
  { readonly check: (caller: Caller, routeClass: AppConfig.RouteClass) => Effect.Effect<Outcome> }
>()("@polyagent/http/RateLimits") {}

/** Rate limits as `rate_limit` says, with its buckets in `RateLimiter`. */
export const make = (settings: AppConfig.AppConfigValue["rateLimit"]) =>
  Effect.map(Effect.service(RateLimiter.RateLimiter), (limiter) => {
    const principalLimit: RateLimiter.Limit = { requestsPerMinute: settings.requestsPerMinute, burst: settings.burst }
    return RateLimits.of({
      check: (caller, routeClass) => {
        const buckets: Array<RateLimiter.Bucket> = [
          { key: `p:${caller.tenant}:${caller.subject}`, limit: caller.rateLimit ?? principalLimit }
        ]
        if (settings.tenant !== null) buckets.push({ key: `t:${caller.tenant}`, limit: settings.tenant })
        const route = settings.routes[routeClass]
        if (route !== undefined) {
          buckets.push({ key: `r:${routeClass}:${caller.tenant}:${caller.subject}`, limit: route })
        }
        return limiter.take(buckets).pipe(
          Effect.map(outcomeOf),
          Effect.catchTag("RateLimiterUnavailable", () => Effect.succeed(storeDown))
        )
      }
    })
  })

/** No rate limits: every request passes, without rate-limit headers. */
export const layerUnlimited: Layer.Layer<RateLimits> = Layer.succeed(
  RateLimits,
  RateLimits.of({ check: () => Effect.succeed(unlimited) })
)

/** Rate limits of `config`: none when `rate_limit.enabled` is false, else buckets in Redis or this process. */
export const layerConfig = (config: AppConfig.AppConfigValue): Layer.Layer<RateLimits> =>
  config.rateLimit.enabled
    ? Layer.effect(RateLimits, make(config.rateLimit)).pipe(Layer.provide(RateLimiter.layerConfig(config)))
    : layerUnlimited
