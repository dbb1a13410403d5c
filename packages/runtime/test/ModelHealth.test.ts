import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as TestClock from "effect/testing/TestClock"
import * as AppConfig from "../src/AppConfig.ts"
import * as ModelHealth from "../src/ModelHealth.ts"

const settings: ModelHealth.HealthSettings = {
  breaker: {
    windowMs: 60_000,
    failureRatio: 0.5,
    minRequests: 10,
    consecutiveFailures: 5,
    openBaseMs: 5_000,
    openMaxMs: 40_000,
    halfOpenProbes: 2,
    probeTimeoutMs: 30_000
  },
  weights: { min: 0.25, max: 2 },
  syncIntervalMs: 1_000,
  onUnavailable: "fail_open"
}

const ok = (latencyMs: number, ttftMs?: number): ModelHealth.CallOutcome => ({ ok: true, latencyMs, ttftMs })
const failure = (reason: ModelHealth.CallOutcome["reason"], latencyMs = 5): ModelHealth.CallOutcome => ({
  ok: false,
  latencyMs,
  reason
})

const storm = (health: ModelHealth.ModelHealth["Service"], model: string, calls = 5) => {
  for (let i = 0; i < calls; i++) health.record(model, failure("rate_limited"))
}

const advance = (ms: number) => TestClock.adjust(`${ms} millis`)

describe("ModelHealth breaker", () => {
  it.effect("a 429 storm opens it: no call is admitted and the model is unavailable", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      storm(health, "m", 4)
      assert.strictEqual(health.circuit("m"), "closed")
      health.record("m", failure("rate_limited"))
      assert.strictEqual(health.circuit("m"), "open")
      assert.isFalse(health.admit("m"))
      assert.strictEqual(health.report("m").status, "unavailable")
      assert.isTrue(health.admit("other"))
    })
  )

  it.effect("the open period doubles while failures continue, up to open_max, and resets once closed", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      storm(health, "m")
      for (const period of [5_000, 10_000, 20_000, 40_000, 40_000]) {
        yield* advance(period - 1)
        assert.strictEqual(health.circuit("m"), "open", `still open just before ${period} ms`)
        assert.isFalse(health.admit("m"))
        yield* advance(1)
        assert.strictEqual(health.circuit("m"), "half_open")
        assert.isTrue(health.admit("m"))
        health.record("m", failure("overloaded"))
        assert.strictEqual(health.circuit("m"), "open")
      }
      yield* advance(40_000)
      assert.isTrue(health.admit("m"))
      assert.isTrue(health.admit("m"))
      health.record("m", ok(20))
      health.record("m", ok(20))
      assert.strictEqual(health.circuit("m"), "closed")
      storm(health, "m")
      yield* advance(5_000)
      assert.strictEqual(health.circuit("m"), "half_open", "a new storm starts again at open_base")
    })
  )

  it.effect("half-open admits only half_open_probes trial calls, frees a lost slot, and successes close it", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      storm(health, "m")
      yield* advance(5_000)
      assert.isTrue(health.admit("m"))
      assert.isTrue(health.admit("m"))
      assert.isFalse(health.admit("m"), "a third trial while two are in flight")
      health.record("m", ok(30))
      assert.strictEqual(health.circuit("m"), "half_open", "one success of two is not enough")
      assert.strictEqual(health.report("m").status, "degraded")
      assert.isTrue(health.admit("m"), "the answered trial freed its slot")
      assert.isFalse(health.admit("m"))
      yield* advance(30_000)
      assert.isTrue(health.admit("m"), "slots whose outcome never came back are freed after probe_timeout")
      health.record("m", ok(30))
      assert.strictEqual(health.circuit("m"), "closed")
      assert.isTrue(health.admit("m"))
    })
  )

  it.effect("the caller's errors (bad_request, context_too_long, content_filtered) never open it", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      for (let i = 0; i < 30; i++) {
        health.record("m", failure(i % 3 === 0 ? "bad_request" : i % 3 === 1 ? "context_too_long" : "content_filtered"))
      }
      assert.strictEqual(health.circuit("m"), "closed")
      const report = health.report("m")
      assert.strictEqual(report.success_rate, 1)
      assert.strictEqual(report.status, "healthy")
      assert.strictEqual(report.requests, 30)
    })
  )

  it.effect("opens on the failure ratio over min_requests without failures in a row", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      for (let i = 0; i < 9; i++) health.record("m", i % 2 === 0 ? failure("timeout") : ok(10))
      assert.strictEqual(health.circuit("m"), "closed", "9 calls are under min_requests")
      health.record("m", failure("network"))
      assert.strictEqual(health.circuit("m"), "open")
    })
  )

  it.effect("probes feed the window but never the breaker", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      for (let i = 0; i < 10; i++) health.record("m", { ok: false, latencyMs: 3, reason: "network", probe: true })
      assert.strictEqual(health.circuit("m"), "closed")
      const report = health.report("m")
      assert.strictEqual(report.status, "unavailable", "every call of the window failed")
      assert.strictEqual(report.requests, 10)
      assert.isNull(report.latency_ms.p50)
      assert.isUndefined(health.latencyMs("m"))
    })
  )
})

describe("ModelHealth windows", () => {
  it.effect("reports success rate and p50/p95 of latency and ttft; old samples leave the window", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      const fresh = health.report("m")
      assert.deepStrictEqual(
        { status: fresh.status, circuit: fresh.circuit, rate: fresh.success_rate, requests: fresh.requests },
        { status: "healthy", circuit: "closed", rate: null, requests: 0 }
      )
      const reasons = ["timeout", "unknown", "overloaded", "network", "timeout", "unknown"] as const
      for (let i = 1; i <= 100; i++) {
        health.record("m", ok(i * 10, i))
        const reason = reasons[i / 17 - 1]
        if (reason !== undefined) health.record("m", failure(reason, 9_000))
      }
      health.record("m", failure("invalid_response", 9_000))
      assert.strictEqual(health.circuit("m"), "closed", "6% failures open nothing")
      const report = health.report("m")
      assert.strictEqual(report.requests, 106)
      assert.closeTo(report.success_rate ?? 0, 100 / 106, 1e-9)
      assert.strictEqual(report.status, "degraded")
      assert.deepStrictEqual(report.latency_ms, { p50: 500, p95: 950 })
      assert.deepStrictEqual(report.ttft_ms, { p50: 50, p95: 95 })
      assert.strictEqual(report.window_s, 60)

      yield* advance(30_000)
      for (let i = 0; i < 20; i++) health.record("m", ok(2_000, 200))
      assert.strictEqual(health.report("m").requests, 126)
      yield* advance(35_000)
      const later = health.report("m")
      assert.strictEqual(later.requests, 20, "the first calls left the window")
      assert.strictEqual(later.success_rate, 1)
      assert.deepStrictEqual(later.latency_ms, { p50: 2_000, p95: 2_000 })
      assert.strictEqual(later.status, "healthy")
      yield* advance(60_000)
      assert.strictEqual(health.report("m").requests, 0)
    })
  )

  it.effect("latencyMs follows a slowdown within a call and a recovery within a few", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      assert.isUndefined(health.latencyMs("a"))
      const truth = { a: 20, b: 20 }
      // A latency router: the lower estimate wins; a model without an estimate is tried first.
      const route = () => {
        const a = health.latencyMs("a")
        const b = health.latencyMs("b")
        const pick = a === undefined ? "a" : b === undefined ? "b" : a <= b ? "a" : "b"
        health.record(pick, ok(truth[pick]))
        return pick
      }
      for (let i = 0; i < 10; i++) route()
      truth.a = 500
      const slowed = Array.from({ length: 20 }, route)
      assert.isAtLeast(slowed.filter((pick) => pick === "b").length, 16, "at least 80% moved away")
      truth.a = 20
      // The slow model's estimate expires with the window, so the router tries it again.
      for (let i = 0; i < 61; i++) {
        yield* advance(1_000)
        route()
      }
      const recovered = Array.from({ length: 20 }, route)
      assert.isAtLeast(recovered.filter((pick) => pick === "a").length, 8, "traffic came back")
      for (let i = 0; i < 3; i++) health.record("c", ok(500))
      for (let i = 0; i < 4; i++) health.record("c", ok(20))
      assert.isBelow(health.latencyMs("c") ?? 0, 60, "four fast calls bring it down")
    })
  )

  it.effect("weight stays within bounds, is deterministic, and is the floor while open", () =>
    Effect.gen(function* () {
      const health = yield* ModelHealth.make(settings)
      assert.strictEqual(health.weight("fresh"), 1)
      for (let i = 0; i < 20; i++) {
        health.record("fast", ok(5))
        health.record("slow", ok(5_000))
        health.record("flaky", i % 3 === 0 ? failure("overloaded") : ok(50))
      }
      for (const model of ["fast", "slow", "flaky", "fresh"]) {
        const weight = health.weight(model)
        assert.isAtLeast(weight, 0.25)
        assert.isAtMost(weight, 2)
        assert.strictEqual(health.weight(model), weight)
      }
      assert.isAbove(health.weight("fast"), 1)
      assert.isBelow(health.weight("slow"), 1)
      assert.isBelow(health.weight("flaky"), health.weight("fast"))
      storm(health, "fast")
      assert.strictEqual(health.weight("fast"), 0.25)
    })
  )

  it.effect("takes its settings from the resilience section of the configuration", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig.make()
      const fromConfig = ModelHealth.settingsOf(config)
      assert.deepStrictEqual(fromConfig.breaker, {
        windowMs: 60_000,
        failureRatio: 0.5,
        minRequests: 10,
        consecutiveFailures: 5,
        openBaseMs: 5_000,
        openMaxMs: 300_000,
        halfOpenProbes: 1,
        probeTimeoutMs: 60_000
      })
      assert.strictEqual(fromConfig.onUnavailable, "fail_open")
    })
  )
})
