/**
 * The sections of the configuration that shape the HTTP edge: `rate_limit:` (token buckets per
 * principal, per tenant and per route class) and `cors:`. Part of `AppConfig`'s
 * closed schema; `config/polyagent.yaml` documents every key at its default.
 */
import * as Schema from "effect/Schema"

const PositiveInt = Schema.Number.check(
  Schema.isInt({ expected: "an integer >= 1" }),
  Schema.isGreaterThanOrEqualTo(1, { expected: "an integer >= 1" })
)

/** A bucket: `burst` tokens, refilled at `requests_per_minute`. */
export const LimitSetting = Schema.Struct({ requestsPerMinute: PositiveInt, burst: PositiveInt }).pipe(
  Schema.encodeKeys({ requestsPerMinute: "requests_per_minute" })
)

/** The classes of routes that may have buckets of their own. */
export const routeClasses = ["chat", "read", "write", "admin"] as const
export type RouteClass = (typeof routeClasses)[number]

/** The `rate_limit:` section. */
export const RateLimit = Schema.Struct({
  enabled: Schema.Boolean,
  /** Every principal's bucket (an API key may have its own). */
  requestsPerMinute: PositiveInt,
  burst: PositiveInt,
  /** One bucket shared by every principal of a tenant; `null`: none. */
  tenant: Schema.NullOr(LimitSetting),
  /** A bucket per principal and route class, on top of the principal's own. */
  routes: Schema.Struct({
    chat: Schema.optionalKey(LimitSetting),
    read: Schema.optionalKey(LimitSetting),
    write: Schema.optionalKey(LimitSetting),
    admin: Schema.optionalKey(LimitSetting)
  }),
  onRedisError: Schema.Literals(["open", "closed"]),
  redisPrefix: Schema.NonEmptyString
}).pipe(
  Schema.encodeKeys({
    requestsPerMinute: "requests_per_minute",
    onRedisError: "on_redis_error",
    redisPrefix: "redis_prefix"
  })
)

/** Its defaults, in YAML shape. */
export const rateLimitDefaults: typeof RateLimit.Encoded = {
  enabled: false,
  requests_per_minute: 600,
  burst: 60,
  tenant: null,
  routes: {},
  on_redis_error: "open",
  redis_prefix: "polyagent:ratelimit:"
}

const Origin = Schema.String.check(
  Schema.isPattern(/^(\*|https?:\/\/[^/\s?#]+)$/, {
    expected: 'an origin such as "https://app.example.com" (scheme, host, optional port; no path), or "*"'
  })
)

/** The `cors:` section: the origins whose browsers may call the API (exact, or `*` for any). */
export const Cors = Schema.Struct({ origins: Schema.Array(Origin) })
