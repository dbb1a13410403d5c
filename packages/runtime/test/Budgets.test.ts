/**
 * Budgets and the ledger on both databases: admission under concurrency, the ledger's sums, UTC
 * days and months driven by the TestClock, a key's own budget, and no SQL for unbudgeted payers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import type { AppConfigValue } from "../src/AppConfig.ts"
import * as Budgets from "../src/Budgets.ts"
import * as Ledger from "../src/Ledger.ts"
import { ApiKeyRecord, Storage, layerSql } from "../src/Storage.ts"
import * as Usage from "../src/Usage.ts"
import { databases } from "./support/databases.ts"

type Limits = AppConfigValue["budgets"]
const noLimits: Limits = Budgets.unlimited

const charge = (cost: number, requestId: string, usage = Usage.make(100, 50)): Budgets.Charge => ({
  model: "m1",
  provider: "p1",
  usage,
  cost_usd: cost,
  request_id: requestId,
  session_id: null
})

/** One call: admitted or refused; when admitted, settled with a charge of `cost`. */
const call = (budgets: Budgets.Budgets["Service"], payer: Budgets.Payer, cost: number, requestId: string) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(budgets.reserve(payer, cost))
    if (Exit.isSuccess(exit)) yield* budgets.settle(exit.value, [charge(cost, requestId)])
    return Exit.asVoid(exit)
  })

/** Why `reserve` refused (a storage failure fails the test). */
const refusal = (budgets: Budgets.Budgets["Service"], payer: Budgets.Payer, estimate: number) =>
  Effect.flip(Effect.catchTag(budgets.reserve(payer, estimate), "StorageError", Effect.die))

const spentBy = (query: Partial<Ledger.UsageQuery> & Pick<Ledger.UsageQuery, "tenant">) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger.Ledger
    const groups = yield* ledger.report({ groupBy: "tenant", keyId: null, from: null, to: null, ...query })
    return groups.reduce((sum, group) => sum + group.cost_usd, 0)
  })

const key = (id: string, budget_usd?: number) =>
  new ApiKeyRecord({
    id,
    tenant: "keyed",
    name: id,
    role: "user",
    key_hash: `hash_${id}`,
    created_at: "2026-01-01T00:00:00.000Z",
    budget_usd: budget_usd ?? null
  })

describe.each(databases("test_budgets"))("Budgets on %s", (_name, database) => {
  const layer = Layer.mergeAll(layerSql, Ledger.layer).pipe(Layer.provideMerge(database), Layer.orDie)

  it.layer(layer, { timeout: 60_000 })((it) => {
    it.effect("200 concurrent calls against a nearly spent budget overspend by one call at most", () =>
      Effect.gen(function* () {
        const budgets = yield* Budgets.make({ ...noLimits, tenants: { race: { dailyUsd: 1 } } })
        const payer = { tenant: "race", keyId: null }
        assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 0.97, "first")))
        const exits = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => call(budgets, payer, 0.02, `r${i}`),
          { concurrency: "unbounded" }
        )
        const admitted = exits.filter(Exit.isSuccess).length
        // 0.97 spent: the first 0.02 fits (0.99 < 1), the next crosses the line, nothing after.
        assert.strictEqual(admitted, 2)
        const spent = yield* spentBy({ tenant: "race" })
        assert.isAtMost(spent, 1 + 0.02 + 1e-9)
        assert.closeTo(spent, 0.97 + admitted * 0.02, 1e-9)
        const refused = exits.filter(Exit.isFailure)
        assert.strictEqual(refused.length, 200 - admitted)
        const error = yield* refusal(budgets, payer, 0.01)
        assert.strictEqual(error.message, "the tenant's daily budget of 1 USD is spent")
        // Settled calls released what they held: the next call is refused for what was spent alone.
        assert.isTrue(Exit.isFailure(yield* call(budgets, payer, 0, "after")))
      })
    )

    it.effect("a call that fits is admitted, and the ledger's sum is the sum of the charges", () =>
      Effect.gen(function* () {
        const budgets = yield* Budgets.make({ ...noLimits, tenants: { fits: { dailyUsd: 1, monthlyUsd: 5 } } })
        const payer = { tenant: "fits", keyId: "key_a" }
        const costs = [0.25, 0.125, 0.3, 0.2]
        for (const [i, cost] of costs.entries())
          assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, cost, `f${i}`)))
        // 0.875 spent: under the limit, so admitted, even with an estimate that crosses it.
        const last = yield* budgets.reserve(payer, 0.5)
        yield* budgets.settle(last, [charge(0.1, "f-last-a"), charge(0.05, "f-last-b")])
        assert.closeTo(yield* spentBy({ tenant: "fits" }), 0.875 + 0.15, 1e-9)
      })
    )

    it.effect("daily and monthly budgets follow the UTC day and month", () =>
      Effect.gen(function* () {
        const budgets = yield* Budgets.make({ ...noLimits, tenants: { clock: { dailyUsd: 1, monthlyUsd: 1.5 } } })
        const payer = { tenant: "clock", keyId: null }
        // The first test of the suite to move its shared TestClock: it starts at the epoch.
        yield* TestClock.adjust(Duration.days(29)) // 1970-01-30T00:00Z
        assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 1, "d1")))
        const day = yield* refusal(budgets, payer, 0.1)
        assert.deepStrictEqual([day.scope, day.period, day.limit_usd], ["tenant", "day", 1])
        yield* TestClock.adjust(Duration.days(1)) // 1970-01-31: a new day, the same month
        assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 0.5, "d2")))
        const month = yield* refusal(budgets, payer, 0.1)
        assert.deepStrictEqual([month.scope, month.period], ["tenant", "month"])
        yield* TestClock.adjust(Duration.days(1)) // February
        assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 0.5, "d3")))
        const february = { from: "1970-02-01T00:00:00.000Z", to: "1970-03-01T00:00:00.000Z" }
        assert.closeTo(yield* spentBy({ tenant: "clock", ...february }), 0.5, 1e-9)
      })
    )

    it.effect("the ledger reports by model, key and day, within a range, one request counted once", () =>
      Effect.gen(function* () {
        const budgets = yield* Budgets.make(noLimits)
        const ledger = yield* Ledger.Ledger
        const settle = (keyId: string | null, charges: ReadonlyArray<Budgets.Charge>) =>
          Effect.flatMap(budgets.reserve({ tenant: "report", keyId }, 1), (reservation) =>
            budgets.settle(reservation, charges)
          )
        // 08:00 UTC of the next day: the suite's tests share one TestClock. Small steps, as the
        // PostgreSQL client's timers run at every step.
        const day = Duration.toMillis(Duration.days(1))
        const now = yield* Clock.currentTimeMillis
        yield* TestClock.adjust(Duration.millis(day - (now % day) + Duration.toMillis(Duration.hours(8))))
        const first = new Date(yield* Clock.currentTimeMillis).toISOString().slice(0, 10)
        yield* settle("key_r1", [charge(0.5, "q1")])
        // No budget applies: the charges are written in the background, before the clock moves on.
        yield* budgets.flush
        yield* TestClock.adjust(Duration.days(1))
        const second = new Date(yield* Clock.currentTimeMillis).toISOString().slice(0, 10)
        // A failover: two models answered one request.
        yield* settle("key_r1", [{ ...charge(0.25, "q2"), model: "m2" }, charge(0.125, "q2")])
        yield* settle(null, [charge(1, "q3", Usage.make(7, 3))])
        yield* budgets.flush
        const report = (groupBy: Ledger.GroupBy, range: { from?: string; to?: string } = {}) =>
          Effect.map(
            ledger.report({ groupBy, tenant: "report", keyId: null, from: range.from ?? null, to: range.to ?? null }),
            (groups) => groups.map((g) => [g.group, g.requests, g.prompt_tokens, g.completion_tokens, g.cost_usd])
          )
        assert.deepStrictEqual(yield* report("model"), [
          ["m1", 3, 207, 103, 1.625],
          ["m2", 1, 100, 50, 0.25]
        ])
        assert.sameDeepMembers(yield* report("key"), [
          ["key_r1", 2, 300, 150, 0.875],
          [null, 1, 7, 3, 1]
        ])
        const midnight = `${second}T00:00:00.000Z`
        assert.deepStrictEqual(yield* report("day", { from: midnight }), [[second, 2, 207, 103, 1.375]])
        assert.deepStrictEqual(yield* report("day", { to: midnight }), [[first, 1, 100, 50, 0.5]])
      })
    )

    it.effect("a key's own budget_usd is its monthly limit; the keys' defaults apply to the others", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.insertApiKey(key("key_small", 0.2))
        yield* storage.insertApiKey(key("key_plain"))
        const budgets = yield* Budgets.make({ ...noLimits, keys: { dailyUsd: null, monthlyUsd: 0.5 } })
        const small = { tenant: "keyed", keyId: "key_small" }
        assert.isTrue(Exit.isSuccess(yield* call(budgets, small, 0.2, "k1")))
        const refused = yield* refusal(budgets, small, 0.01)
        assert.deepStrictEqual([refused.scope, refused.period, refused.limit_usd], ["key", "month", 0.2])
        const plain = { tenant: "keyed", keyId: "key_plain" }
        assert.isTrue(Exit.isSuccess(yield* call(budgets, plain, 0.4, "k2")))
        assert.isTrue(Exit.isSuccess(yield* call(budgets, plain, 0.2, "k3")))
        assert.strictEqual((yield* refusal(budgets, plain, 0.01)).limit_usd, 0.5)
        assert.closeTo(yield* spentBy({ tenant: "keyed", keyId: "key_plain" }), 0.6, 1e-9)
      })
    )
  })

  it.effect(
    "a payer without budgets is admitted without any SQL",
    () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.insertApiKey(
          new ApiKeyRecord({
            id: "key_free",
            tenant: "free",
            name: "",
            role: "user",
            key_hash: "hash_free",
            created_at: "2026-01-01T00:00:00.000Z",
            budget_usd: null
          })
        )
        const budgets = yield* Budgets.make({ ...noLimits, tenants: { other: { dailyUsd: 1 } } })
        const keyed = { tenant: "free", keyId: "key_free" }
        yield* budgets.reserve(keyed, 1) // reads the key's budget (none) once
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP TABLE budget_spend`
        yield* sql`DROP TABLE api_keys`
        for (const payer of [keyed, { tenant: "free", keyId: null }]) {
          const reservation = yield* budgets.reserve(payer, 1000)
          assert.deepStrictEqual(reservation.holds, [])
        }
        // The ledger still gets the charge.
        const reservation = yield* budgets.reserve(keyed, 1)
        yield* budgets.settle(reservation, [charge(0.42, "free-1", Usage.make(10, 5, { cached: 4, reasoning: 2 }))])
        yield* budgets.flush
        const rows = yield* sql<{ cached_tokens: unknown; reasoning_tokens: unknown; day: string }>`
        SELECT cached_tokens, reasoning_tokens, day FROM usage_ledger WHERE request_id = 'free-1'`
        assert.deepStrictEqual(
          rows.map((row) => [Number(row.cached_tokens), Number(row.reasoning_tokens), row.day]),
          [[4, 2, "1970-01-01"]]
        )
      }).pipe(Effect.provide(layerSql.pipe(Layer.provideMerge(database), Layer.orDie))),
    { timeout: 30_000 }
  )
})

describe("Budgets in memory", () => {
  it.effect("admits by the same rule: concurrent calls overspend by one call at most, periods in UTC", () =>
    Effect.gen(function* () {
      const budgets = yield* Budgets.makeMemory({ ...Budgets.unlimited, tenants: { race: { dailyUsd: 1 } } })
      const payer = { tenant: "race", keyId: "key_m" }
      assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 0.97, "first")))
      const exits = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => call(budgets, payer, 0.02, `m${i}`),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(exits.filter(Exit.isSuccess).length, 2)
      assert.strictEqual((yield* refusal(budgets, payer, 0.01)).period, "day")
      yield* TestClock.adjust(Duration.days(1))
      assert.isTrue(Exit.isSuccess(yield* call(budgets, payer, 0.5, "next-day")))
      // Nobody else's budget applies.
      assert.deepStrictEqual((yield* (yield* Budgets.makeMemory(Budgets.unlimited)).reserve(payer, 1e9)).holds, [])
    })
  )
})
