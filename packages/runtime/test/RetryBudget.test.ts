import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
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

  it.effect("reads its attempts and backoff from resilience.retry", () =>
    Effect.gen(function* () {
      const retry = RetryBudget.retrySettingsOf(
        yield* AppConfig.make({ resilience: { retry: { maxAttempts: 5, backoffMax: Duration.seconds(4) } } })
      )
      assert.strictEqual(retry.maxAttempts, 5)
      assert.strictEqual(Duration.toMillis(retry.baseDelay), 200)
      assert.strictEqual(Duration.toMillis(retry.maxDelay), 4_000)
    })
  )

  it.effect("layerMemory is the default budget", () =>
    Effect.gen(function* () {
      const budget = yield* RetryBudget.RetryBudget
      for (let i = 0; i < 100; i++) budget.request()
      let granted = 0
      while (budget.acquire()) granted += 1
      assert.strictEqual(granted, 30, "20% of 100 plus 10 for the first second")
    }).pipe(Effect.provide(RetryBudget.layerMemory))
  )
})
