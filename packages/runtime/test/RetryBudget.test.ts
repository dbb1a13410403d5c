import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Random } from "effect"
import * as TestClock from "effect/testing/TestClock"
import * as AppConfig from "../src/AppConfig.ts"
import * as RetryBudget from "../src/RetryBudget.ts"

describe("RetryBudget", () => {
  it.effect("with every call failing, retries never exceed 20% of requests plus 10 per second", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig.make()
      const budget = yield* RetryBudget.make(RetryBudget.settingsOf(config))
      let requests = 0
      let retries = 0
      const perSecond = [50, 400, 5, 1000, 0, 200]
      for (let second = 0; second < 120; second++) {
        const rate = perSecond[Math.floor(second / 20)] ?? 0
        for (let i = 0; i < rate; i++) {
          budget.request()
          requests += 1
          // Every attempt fails; a client would retry up to 3 times.
          for (let attempt = 0; attempt < 3 && budget.acquire(); attempt++) retries += 1
        }
        yield* TestClock.adjust(Duration.seconds(1))
        assert.isAtMost(retries, 0.2 * requests + 10 * (second + 1), `after ${second + 1} s`)
      }
      // The budget is really spent, not refused outright: close to its bound.
      assert.isAtLeast(retries, 0.8 * (0.2 * requests + 10 * 120))
    })
  )

  it.effect("refills as the window moves on", () =>
    Effect.gen(function* () {
      const budget = yield* RetryBudget.make({ ratio: 0.2, perSecond: 1, window: Duration.seconds(10) })
      yield* TestClock.adjust(Duration.seconds(20))
      for (let i = 0; i < 50; i++) budget.request()
      let granted = 0
      while (budget.acquire()) granted += 1
      assert.strictEqual(granted, 20, "20% of 50 plus 1 per second of a 10 s window")
      yield* TestClock.adjust(Duration.seconds(11))
      assert.isTrue(budget.acquire(), "the old retries left the window")
    })
  )

  it.effect("backs off with full jitter under a doubling ceiling capped at backoff_max; Retry-After wins", () =>
    Effect.gen(function* () {
      const backoff = RetryBudget.backoffOf(yield* AppConfig.make())
      assert.strictEqual(backoff.maxAttempts, 3)
      const ceilings = [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
      const delays: Array<number> = []
      for (let round = 0; round < 50; round++) {
        for (const [i, ceiling] of ceilings.entries()) {
          const pause = Duration.toMillis(yield* RetryBudget.delay(backoff, i + 1, null))
          assert.isAtLeast(pause, 0)
          assert.isAtMost(pause, ceiling)
          delays.push(pause / ceiling)
        }
      }
      assert.isAbove(new Set(delays).size, 300, "jittered, not fixed")
      assert.isBelow(Math.abs(delays.reduce((a, b) => a + b, 0) / delays.length - 0.5), 0.1, "spread over the range")
      assert.strictEqual(Duration.toMillis(yield* RetryBudget.delay(backoff, 1, 7_000)), 7_000)
      const seeded = (seed: string) => Random.withSeed(RetryBudget.delay(backoff, 3, null), seed)
      assert.deepStrictEqual(yield* seeded("a"), yield* seeded("a"))
    })
  )
})
