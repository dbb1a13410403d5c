/**
 * The token buckets, in this process and in the local Redis (a key prefix per test), under the
 * same cases and `TestClock`: burst, refill, Retry-After, all-or-none over several buckets, the
 * clock of a process behind another's; then Redis unreachable with each policy.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Redacted, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { randomBytes } from "node:crypto"
import * as RateLimiter from "../src/RateLimiter.ts"

const REDIS_URL = "redis://127.0.0.1:6379"

const perMinute30: RateLimiter.Limit = { requestsPerMinute: 30, burst: 30 }

const build = (layer: Layer.Layer<RateLimiter.RateLimiter>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, RateLimiter.RateLimiter))

const stores: ReadonlyArray<
  readonly [string, () => Effect.Effect<RateLimiter.RateLimiter["Service"], never, Scope.Scope>]
> = [
  ["in process", () => build(RateLimiter.layerMemory)],
  [
    "in Redis",
    () =>
      build(
        RateLimiter.layerRedis({
          url: Redacted.make(REDIS_URL),
          prefix: `test:ratelimit:${randomBytes(6).toString("hex")}:`,
          onStoreError: "closed"
        })
      )
  ]
]

const takeN = (limiter: RateLimiter.RateLimiter["Service"], buckets: ReadonlyArray<RateLimiter.Bucket>, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => limiter.take(buckets))

// The clock starts at a realistic epoch (TestClock starts at 0) so that Redis sees sane numbers.
const start = TestClock.setTime(1_767_225_600_000)

for (const [name, make] of stores) {
  describe(`RateLimiter ${name}`, () => {
    it.effect("a new bucket lets its burst through, then refuses with the wait until the next token", () =>
      Effect.gen(function* () {
        yield* start
        const limiter = yield* make()
        const bucket = [{ key: "p:default:key_a", limit: perMinute30 }]
        const passed = yield* takeN(limiter, bucket, 30)
        assert.deepStrictEqual(passed[0], { _tag: "Allowed", limit: 30, remaining: 29 })
        assert.deepStrictEqual(passed[29], { _tag: "Allowed", limit: 30, remaining: 0 })
        // 30 a minute: one token every 2 s.
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Denied", limit: 30, retryAfterMs: 2000 })
        yield* TestClock.adjust("1500 millis")
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Denied", limit: 30, retryAfterMs: 500 })
        yield* TestClock.adjust("500 millis")
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Allowed", limit: 30, remaining: 0 })
        // A refusal costs nothing: after a refused request the next token still comes 2 s later.
        assert.strictEqual((yield* limiter.take(bucket))._tag, "Denied")
        yield* TestClock.adjust("1999 millis")
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Denied", limit: 30, retryAfterMs: 1 })
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* limiter.take(bucket))._tag, "Allowed")
      }).pipe(Effect.scoped)
    )

    it.effect("refills by the time elapsed, never above the burst", () =>
      Effect.gen(function* () {
        yield* start
        const limiter = yield* make()
        const bucket = [{ key: "p:default:key_b", limit: { requestsPerMinute: 600, burst: 5 } }]
        yield* takeN(limiter, bucket, 5)
        // 600 a minute: one token every 100 ms; 350 ms bring 3 (and a half).
        yield* TestClock.adjust("350 millis")
        const after = yield* takeN(limiter, bucket, 4)
        assert.deepStrictEqual(
          after.map((d) => d._tag),
          ["Allowed", "Allowed", "Allowed", "Denied"]
        )
        assert.deepStrictEqual(after[3], { _tag: "Denied", limit: 5, retryAfterMs: 50 })
        yield* TestClock.adjust("1 hour")
        const full = yield* takeN(limiter, bucket, 6)
        assert.deepStrictEqual(full[0], { _tag: "Allowed", limit: 5, remaining: 4 })
        assert.strictEqual(full.filter((d) => d._tag === "Allowed").length, 5)
      }).pipe(Effect.scoped)
    )

    it.effect("takes from several buckets all or none, and reports the tightest", () =>
      Effect.gen(function* () {
        yield* start
        const limiter = yield* make()
        const tenant = { key: "t:acme", limit: { requestsPerMinute: 60, burst: 3 } }
        const a = [{ key: "p:acme:a", limit: { requestsPerMinute: 60, burst: 10 } }, tenant]
        const b = [{ key: "p:acme:b", limit: { requestsPerMinute: 60, burst: 10 } }, tenant]
        assert.deepStrictEqual(yield* limiter.take(a), { _tag: "Allowed", limit: 3, remaining: 2 })
        yield* takeN(limiter, b, 2)
        // The tenant is empty: both are refused, and the principals' buckets keep their tokens.
        assert.deepStrictEqual(yield* limiter.take(a), { _tag: "Denied", limit: 3, retryAfterMs: 1000 })
        assert.deepStrictEqual(yield* limiter.take(a.slice(0, 1)), { _tag: "Allowed", limit: 10, remaining: 8 })
        assert.deepStrictEqual(yield* limiter.take(b.slice(0, 1)), { _tag: "Allowed", limit: 10, remaining: 7 })
      }).pipe(Effect.scoped)
    )

    it.effect("a clock behind the bucket's last take refills nothing and takes nothing back", () =>
      Effect.gen(function* () {
        yield* start
        const limiter = yield* make()
        const bucket = [{ key: "p:default:skew", limit: { requestsPerMinute: 60, burst: 2 } }]
        yield* TestClock.adjust("10 seconds")
        yield* takeN(limiter, bucket, 2)
        yield* TestClock.setTime(1_767_225_600_000 + 5_000)
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Denied", limit: 2, retryAfterMs: 1000 })
        yield* TestClock.setTime(1_767_225_600_000 + 11_000)
        assert.deepStrictEqual(yield* limiter.take(bucket), { _tag: "Allowed", limit: 2, remaining: 0 })
      }).pipe(Effect.scoped)
    )
  })
}

// Nothing listens on port 1.
const unreachable = (onStoreError: RateLimiter.OnStoreError) =>
  build(RateLimiter.layerRedis({ url: Redacted.make("redis://127.0.0.1:1"), prefix: "x:", onStoreError }))

const captured = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return { lines, layer: Logger.layer([logger]) }
}

describe("RateLimiter in Redis, unreachable", () => {
  it.effect("fails open: requests pass unchecked, one log line for the outage", () => {
    const { lines, layer } = captured()
    return Effect.gen(function* () {
      const limiter = yield* unreachable("open")
      const decisions = yield* takeN(limiter, [{ key: "p:k", limit: perMinute30 }], 5)
      assert.deepStrictEqual(
        decisions.map((d) => d._tag),
        ["Unchecked", "Unchecked", "Unchecked", "Unchecked", "Unchecked"]
      )
      assert.deepStrictEqual(
        lines.filter((line) => line.includes("Redis is unavailable")),
        ["rate limits: Redis is unavailable"]
      )
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.effect("fails closed: every take fails with RateLimiterUnavailable", () =>
    Effect.gen(function* () {
      const limiter = yield* unreachable("closed")
      const error = yield* Effect.flip(limiter.take([{ key: "p:k", limit: perMinute30 }]))
      assert.strictEqual(error._tag, "RateLimiterUnavailable")
    }).pipe(Effect.scoped)
  )
})
