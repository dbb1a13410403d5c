/**
 * Token-bucket rate limits. A request takes one token from each of its buckets (its principal's,
 * its tenant's, its route class's — the edge decides which), all or none: a request refused by
 * one bucket costs the others nothing. A bucket holds `burst` tokens and refills at
 * `requestsPerMinute`; a new bucket starts full.
 *
 * Two stores with the same behaviour (the same unit tests run on both): in this process
 * ({@link layerMemory}), and in Redis ({@link layerRedis}: one Lua script per take, atomic, so
 * every process that shares the Redis shares the limits). When Redis fails, the configured
 * policy decides: fail open (the request passes unchecked) or fail closed
 * ({@link RateLimiterUnavailable}); either way the outage is logged once, when it starts, and
 * once when it ends, and each failed take counts in `polyagent_rate_limit_store_errors_total`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { AppConfigValue } from "./AppConfig.ts"
import * as RateLimiterRedis from "./internal/rateLimiterRedis.ts"
import * as TokenBucket from "./internal/tokenBucket.ts"

/** A bucket's size (`burst` tokens) and refill rate (`requestsPerMinute` tokens a minute). */
export interface Limit {
  readonly requestsPerMinute: number
  readonly burst: number
}

/** One bucket a request takes from: its key (a principal, a tenant…) and its limit. */
export interface Bucket {
  readonly key: string
  readonly limit: Limit
}

/**
 * What a take decided. `Allowed` and `Denied` name the binding bucket's `burst` as `limit` (the
 * one with the fewest tokens left, or the one that refused); `Unchecked` is a request let
 * through because the store failed and the policy is to fail open.
 */
export type Decision =
  | { readonly _tag: "Allowed"; readonly limit: number; readonly remaining: number }
  | { readonly _tag: "Denied"; readonly limit: number; readonly retryAfterMs: number }
  | { readonly _tag: "Unchecked" }

/** The store of the buckets failed and the policy is to fail closed: the request must not pass. */
export class RateLimiterUnavailable extends Schema.TaggedError<RateLimiterUnavailable>()("RateLimiterUnavailable", {
  store: Schema.Literal("redis")
}) {
  override get message(): string {
    return "rate limits cannot be checked: their store is unavailable"
  }
}

/** What to do with a request whose buckets cannot be read: let it pass, or refuse it. */
export type OnStoreError = "open" | "closed"

/**
 * Takes tokens from buckets.
 *
 * When to use: once per request, after authentication, with every bucket that applies to it.
 *
 * Details: all or none; the time is the `Clock`'s, so `TestClock` drives refills in tests.
 *
 * Gotchas: an empty list of buckets is allowed with `limit` and `remaining` 0; a bucket's key
 * must name its limit's owner only (a changed limit keeps the tokens already there, capped).
 */
export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    readonly take: (buckets: ReadonlyArray<Bucket>) => Effect.Effect<Decision, RateLimiterUnavailable>
  }
>()("@polyagent/runtime/RateLimiter") {}

/** Failed takes of the Redis store, by policy (Prometheus: `polyagent_rate_limit_store_errors_total`). */
export const storeErrors = Metric.counter("polyagent_rate_limit_store_errors_total", {
  description: "Rate-limit checks whose store (Redis) failed",
  incremental: true
})

/** The decision for `buckets` whose levels after the take are `levels`. */
const decide = (buckets: ReadonlyArray<Bucket>, allowed: boolean, levels: ReadonlyArray<number>): Decision => {
  if (allowed) {
    let limit = 0
    let remaining = Number.POSITIVE_INFINITY
    buckets.forEach((bucket, i) => {
      const left = TokenBucket.tokens(levels[i] ?? 0)
      if (left < remaining) {
        remaining = left
        limit = bucket.limit.burst
      }
    })
    return { _tag: "Allowed", limit, remaining: Number.isFinite(remaining) ? remaining : 0 }
  }
  let limit = 0
  let retryAfterMs = 0
  buckets.forEach((bucket, i) => {
    const wait = TokenBucket.waitMs(levels[i] ?? 0, bucket.limit)
    if (wait > retryAfterMs) {
      retryAfterMs = wait
      limit = bucket.limit.burst
    }
  })
  return { _tag: "Denied", limit, retryAfterMs }
}

/** The in-process store: buckets in a map, swept of expired ones when it grows past this. */
const sweepAbove = 10_000

/** Buckets kept in this process: for one process, and for tests (deterministic under `TestClock`). */
export const makeMemory: Effect.Effect<RateLimiter["Service"]> = Effect.sync(() => {
  const buckets = new Map<string, TokenBucket.Level & { readonly expires: number }>()
  const sweep = (now: number) => {
    for (const [key, entry] of buckets) if (entry.expires <= now) buckets.delete(key)
  }
  return RateLimiter.of({
    take: (wanted) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (buckets.size > sweepAbove) sweep(now)
        const refilled = wanted.map((bucket) => {
          const stored = buckets.get(bucket.key)
          const fresh = stored !== undefined && stored.expires > now ? stored : undefined
          return { bucket, level: TokenBucket.refill(fresh, bucket.limit, now) }
        })
        const allowed = refilled.every(({ level }) => level.level >= TokenBucket.unit)
        const levels = refilled.map(({ bucket, level }) => {
          const after = allowed ? level.level - TokenBucket.unit : level.level
          buckets.set(bucket.key, { level: after, at: level.at, expires: level.at + TokenBucket.ttlMs(bucket.limit) })
          return after
        })
        return decide(wanted, allowed, levels)
      })
  })
})

/** Buckets kept in this process. */
export const layerMemory: Layer.Layer<RateLimiter> = Layer.effect(RateLimiter, makeMemory)

/** Options of {@link layerRedis}. */
export interface RedisOptions {
  readonly url: Redacted.Redacted<string>
  /** Every key starts with it (tests give each their own). */
  readonly prefix: string
  readonly onStoreError: OnStoreError
}

/**
 * Buckets in the Redis at `url`, shared by every process that uses it. A failed take follows
 * `onStoreError`, logs once per outage and counts in {@link storeErrors}.
 */
export const makeRedis = (options: RedisOptions) =>
  Effect.gen(function* () {
    const take = yield* RateLimiterRedis.make({ url: options.url })
    let down = false
    const failed = (error: RateLimiterRedis.RedisTakeError) =>
      Effect.gen(function* () {
        yield* Metric.update(storeErrors, 1)
        if (!down) {
          down = true
          yield* Effect.logWarning("rate limits: Redis is unavailable").pipe(
            Effect.annotateLogs({
              on_redis_error: options.onStoreError,
              outcome: options.onStoreError === "open" ? "requests pass unchecked" : "requests are refused (503)",
              reason: String(error.cause)
            })
          )
        }
        return options.onStoreError === "open"
          ? ({ _tag: "Unchecked" } as const)
          : yield* new RateLimiterUnavailable({ store: "redis" })
      })
    return RateLimiter.of({
      take: (wanted) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          take(
            wanted.map((bucket) => ({ key: `${options.prefix}${bucket.key}`, limit: bucket.limit })),
            now
          ).pipe(
            Effect.flatMap((taken) => {
              const decision = decide(wanted, taken.allowed, taken.levels)
              if (!down) return Effect.succeed(decision)
              down = false
              return Effect.as(Effect.logInfo("rate limits: Redis is available again"), decision)
            }),
            Effect.catchTag("RedisTakeError", failed)
          )
        )
    })
  })

/** Buckets in Redis (see {@link makeRedis}); the connection lives as long as the layer. */
export const layerRedis = (options: RedisOptions): Layer.Layer<RateLimiter> =>
  Layer.effect(RateLimiter, makeRedis(options))

/** The store `config` asks for: Redis when `redis_url` is set, else this process. */
export const layerConfig = (config: AppConfigValue): Layer.Layer<RateLimiter> =>
  Option.match(config.redisUrl, {
    onNone: () => layerMemory,
    onSome: (url) =>
      layerRedis({ url, prefix: config.rateLimit.redisPrefix, onStoreError: config.rateLimit.onRedisError })
  })
