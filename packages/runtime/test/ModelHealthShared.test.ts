/**
 * Health shared between two `ModelHealth` instances (two processes' views) through the local
 * Redis (a key prefix per test) and PostgreSQL (a schema per test), and a Redis that cannot be
 * reached. Real I/O, so real time: the sync interval is short and the checks poll, bounded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Context, Effect, Layer, Logger, Redacted, Schedule, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { Redis } from "ioredis"
import * as Database from "../src/Database.ts"
import * as ModelHealth from "../src/ModelHealth.ts"

const REDIS_URL = "redis://127.0.0.1:6379"
const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

const settings = (onUnavailable: "fail_open" | "fail_closed" = "fail_open"): ModelHealth.HealthSettings => ({
  breaker: {
    windowMs: 60_000,
    failureRatio: 0.5,
    minRequests: 10,
    consecutiveFailures: 5,
    openBaseMs: 60_000,
    openMaxMs: 120_000,
    halfOpenProbes: 1,
    probeTimeoutMs: 30_000
  },
  weights: { min: 0.25, max: 2 },
  syncIntervalMs: 50,
  onUnavailable
})

const build = <E, R>(layer: Layer.Layer<ModelHealth.ModelHealth, E, R>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, ModelHealth.ModelHealth))

/** Polls `check` every 20 ms for at most 5 s. */
const eventually = (check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("20 millis"), times: 250 }),
    Effect.map((done) => assert.isTrue(done, "not within 5 s"))
  )

const storm = (health: ModelHealth.ModelHealth["Service"], model: string) => {
  for (let i = 0; i < 5; i++) health.record(model, { ok: false, latencyMs: 12, reason: "rate_limited" })
}

const sharesTheBreaker = <E, R>(make: () => Layer.Layer<ModelHealth.ModelHealth, E, R>) =>
  Effect.gen(function* () {
    const first = yield* build(make())
    const second = yield* build(make())
    for (let i = 0; i < 3; i++) first.record("gpt-x", { ok: true, latencyMs: 40, ttftMs: 8 })
    storm(first, "gpt-x")
    assert.isFalse(first.admit("gpt-x"))
    yield* eventually(() => !second.admit("gpt-x"))
    assert.strictEqual(second.circuit("gpt-x"), "open")
    yield* eventually(() => second.report("gpt-x").requests === 8)
    const report = second.report("gpt-x")
    assert.strictEqual(report.status, "unavailable")
    assert.closeTo(report.success_rate ?? 0, 3 / 8, 1e-9)
    assert.strictEqual(report.latency_ms.p50, 40)
    assert.isTrue(second.admit("other"))
    assert.strictEqual(first.sharedStateErrors() + second.sharedStateErrors(), 0)
  })

/** A test with real time and I/O, its resources released at its end. */
const live = <E>(name: string, test: Effect.Effect<void, E, Scope.Scope>) =>
  it.live(name, () => Effect.scoped(test), 20_000)

describe("ModelHealth shared between processes", () => {
  live(
    "over Redis: the second instance sees the breaker the first opened, and its window",
    Effect.gen(function* () {
      const prefix = `test:health:${process.pid}:${Date.now()}:`
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          const redis = new Redis(REDIS_URL)
          await redis.del(`${prefix}windows`, `${prefix}breakers`)
          redis.disconnect()
        })
      )
      yield* sharesTheBreaker(() => ModelHealth.layerRedis(settings(), { url: Redacted.make(REDIS_URL), prefix }))
    })
  )

  live(
    "over PostgreSQL: the same, through the health tables",
    Effect.gen(function* () {
      const schema = `test_health_${process.pid}_${Date.now()}`
      const database = yield* Layer.build(Database.layerPg({ url: Redacted.make(PG_URL), schema }))
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
        }).pipe(Effect.provide(database), Effect.orDie)
      )
      yield* sharesTheBreaker(() =>
        ModelHealth.layerSql(settings()).pipe(Layer.provide(Layer.succeedContext(database)))
      )
    })
  )

  live(
    "Redis unreachable: fail_open routes on the local view, logged once, counted, never blocking",
    Effect.gen(function* () {
      const warnings: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => {
        if (logLevel === "Warn") warnings.push(String(Arr.ensure(message)[0]))
      })
      const health = yield* build(
        ModelHealth.layerRedis(settings("fail_open"), { url: Redacted.make("redis://127.0.0.1:1"), prefix: "x:" })
      ).pipe(Effect.provide(Logger.layer([capture])))
      yield* eventually(() => health.sharedStateErrors() >= 3)
      const started = performance.now()
      assert.isTrue(health.admit("gpt-x"))
      storm(health, "gpt-x")
      assert.isFalse(health.admit("gpt-x"), "its own breaker still works")
      assert.isTrue(health.admit("other"))
      assert.isBelow(performance.now() - started, 50)
      yield* eventually(() => health.sharedStateErrors() >= 6)
      assert.strictEqual(warnings.filter((line) => line === "shared health state unreachable").length, 1)
      assert.strictEqual(health.report("other").status, "healthy")
    })
  )

  live(
    "Redis unreachable: fail_closed treats every model as unavailable",
    Effect.gen(function* () {
      const health = yield* build(
        ModelHealth.layerRedis(settings("fail_closed"), { url: Redacted.make("redis://127.0.0.1:1"), prefix: "x:" })
      )
      yield* eventually(() => health.sharedStateErrors() >= 1)
      assert.isFalse(health.admit("gpt-x"))
      assert.strictEqual(health.report("gpt-x").status, "unavailable")
    })
  )
})
