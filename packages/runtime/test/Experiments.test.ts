/**
 * A/B experiments: sticky, well-spread assignment with no shared state; outcomes and feedback
 * turned into per-arm results on both databases.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import { SqlClient } from "effect/sql"
import * as Experiments from "../src/Experiments.ts"
import * as ExperimentStorage from "../src/ExperimentStorage.ts"
import { Storage, StorageError, layerSql } from "../src/Storage.ts"
import { databases, sqlite } from "./support/databases.ts"

const split: Experiments.Experiment = {
  id: "mini-vs-haiku",
  arms: [
    { target: "gpt-4o-mini", weight: 70 },
    { target: "claude-haiku-4-5", weight: 30 }
  ]
}

const sessionIds = Array.from({ length: 10_000 }, (_, i) => `sess_${i.toString(36)}_${(i * 7919) % 10_007}`)

const shares = (experiment: Experiments.Experiment, keys: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const key of keys) {
    const arm = Experiments.assign(experiment, key).target
    counts.set(arm, (counts.get(arm) ?? 0) + 1)
  }
  return counts
}

describe("Experiments.assign", () => {
  it("splits 10,000 sessions 70/30 within ±2%", () => {
    const counts = shares(split, sessionIds)
    const mini = (counts.get("gpt-4o-mini") ?? 0) / sessionIds.length
    const haiku = (counts.get("claude-haiku-4-5") ?? 0) / sessionIds.length
    assert.approximately(mini, 0.7, 0.02)
    assert.approximately(haiku, 0.3, 0.02)
    assert.strictEqual(mini + haiku, 1)
  })

  it("splits three arms by weight, also on sequential ids", () => {
    const three: Experiments.Experiment = {
      id: "three",
      arms: [
        { target: "a", weight: 1 },
        { target: "b", weight: 2 },
        { target: "c", weight: 1 }
      ]
    }
    const sequential = Array.from({ length: 10_000 }, (_, i) => `session-${i}`)
    const counts = shares(three, sequential)
    assert.approximately((counts.get("a") ?? 0) / 10_000, 0.25, 0.02)
    assert.approximately((counts.get("b") ?? 0) / 10_000, 0.5, 0.02)
    assert.approximately((counts.get("c") ?? 0) / 10_000, 0.25, 0.02)
  })

  it("is sticky: the same session gets the same arm every time, from a fresh copy of the experiment", () => {
    const first = sessionIds.map((id) => Experiments.assign(split, id).target)
    const copy: Experiments.Experiment = JSON.parse(JSON.stringify(split))
    const again = sessionIds.map((id) => Experiments.assign(copy, id).target)
    assert.deepStrictEqual(again, first)
  })

  it("assigns independently in two experiments with the same arms", () => {
    const other = { ...split, id: "another-test" }
    const same = sessionIds.filter(
      (id) => Experiments.assign(split, id).target === Experiments.assign(other, id).target
    ).length
    // Independent 70/30 draws agree with probability 0.7² + 0.3² = 0.58.
    assert.approximately(same / sessionIds.length, 0.58, 0.02)
  })

  it("never picks an arm of weight 0, and answers the one arm there is", () => {
    const withZero: Experiments.Experiment = {
      id: "z",
      arms: [
        { target: "off", weight: 0 },
        { target: "on", weight: 3 }
      ]
    }
    assert.strictEqual(shares(withZero, sessionIds.slice(0, 1_000)).get("on"), 1_000)
    assert.strictEqual(Experiments.assign({ id: "one", arms: [{ target: "m", weight: 1 }] }, "s").target, "m")
  })
})

const experiments = Experiments.fromConfig({
  "mini-vs-haiku": { arms: { "gpt-4o-mini": 70, "claude-haiku-4-5": 30 } },
  empty: { arms: { local: 1 } }
})

const at = "2026-01-01T00:00:00.000Z"

/** 20 calls on one arm, 2 on another, feedback on three sessions: the results of each arm. */
const resultsScenario = () =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const service = yield* Experiments.Experiments
    for (const id of ["s1", "s2", "s3"]) yield* storage.createSession("t1", id, at)
    const outcome = (arm: string, session: string | null, ok: boolean, latency: number, cost: number) =>
      service.record({
        tenant: "t1",
        experiment: "mini-vs-haiku",
        arm,
        session_id: session,
        request_id: `req_${arm}_${latency}`,
        ok,
        latency_ms: latency,
        cost_usd: cost
      })
    // 20 calls on the mini arm (latencies 10..200, one failed) over two sessions, recorded at once.
    yield* Effect.all(
      Array.from({ length: 20 }, (_, i) =>
        outcome("gpt-4o-mini", i % 2 === 0 ? "s1" : "s2", i !== 19, (i + 1) * 10, 0.001)
      ),
      { concurrency: "unbounded" }
    )
    yield* outcome("claude-haiku-4-5", "s3", true, 300, 0.01)
    yield* outcome("claude-haiku-4-5", null, false, 5, 0)
    // Another tenant's outcome and another experiment's are not counted.
    yield* service.record({
      tenant: "t2",
      experiment: "mini-vs-haiku",
      arm: "gpt-4o-mini",
      session_id: "s1",
      request_id: "r",
      ok: true,
      latency_ms: 1,
      cost_usd: 5
    })
    yield* service.record({
      tenant: "t1",
      experiment: "empty",
      arm: "local",
      session_id: "s1",
      request_id: "r2",
      ok: true,
      latency_ms: 1,
      cost_usd: 5
    })
    // Removed from the configuration, but it has data.
    yield* outcome("old-model", "s3", true, 50, 0.5)

    yield* service.feedback("t1", { session_id: "s1", score: 1 })
    yield* service.feedback("t1", { session_id: "s2", score: 0, comment: "meh" })
    yield* service.feedback("t1", { session_id: "s3", score: -0.5 })

    const results = yield* service.results("t1", "mini-vs-haiku")
    assert.strictEqual(results.id, "mini-vs-haiku")
    assert.deepStrictEqual(
      results.arms.map((arm) => arm.target),
      ["gpt-4o-mini", "claude-haiku-4-5", "old-model"]
    )
    const [mini, haiku, old] = results.arms
    assert.deepStrictEqual(
      { ...mini, cost_usd: { total: mini?.cost_usd.total.toFixed(6), per: mini?.cost_usd.per_request.toFixed(6) } },
      {
        target: "gpt-4o-mini",
        weight: 70,
        sessions: 2,
        requests: 20,
        errors: 1,
        error_rate: 0.05,
        // Successful calls: 10..190 ms (19 of them); nearest rank 10 and 19.
        latency_ms: { p50: 100, p95: 190 },
        cost_usd: { total: "0.020000", per: "0.001000" },
        feedback: { count: 2, mean_score: 0.5 }
      }
    )
    assert.deepStrictEqual(haiku, {
      target: "claude-haiku-4-5",
      weight: 30,
      sessions: 1,
      requests: 2,
      errors: 1,
      error_rate: 0.5,
      latency_ms: { p50: 300, p95: 300 },
      cost_usd: { total: 0.01, per_request: 0.005 },
      feedback: { count: 1, mean_score: -0.5 }
    })
    assert.strictEqual(old?.weight, 0)
    assert.strictEqual(old?.requests, 1)
    // Session s3 ran in both haiku and old-model: its feedback counts for each.
    assert.deepStrictEqual(old?.feedback, { count: 1, mean_score: -0.5 })
  })

/** An experiment without outcomes in this tenant: zeros; one that is not configured: not found. */
const zerosScenario = () =>
  Effect.gen(function* () {
    const service = yield* Experiments.Experiments
    const results = yield* service.results("t9", "mini-vs-haiku")
    assert.deepStrictEqual(
      results.arms.map((arm) => [arm.target, arm.weight, arm.requests, arm.latency_ms.p95, arm.feedback.count]),
      [
        ["gpt-4o-mini", 70, 0, 0, 0],
        ["claude-haiku-4-5", 30, 0, 0, 0]
      ]
    )
    const unknown = yield* Effect.flip(service.results("t9", "nope"))
    assert.strictEqual(unknown._tag, "ExperimentNotFound")
    assert.strictEqual(unknown.message, "experiment nope not found")
  })

describe.each(databases("test_experiments"))("Experiments on %s", (_name, database) => {
  const layer = Layer.mergeAll(layerSql, Experiments.layer(experiments)).pipe(Layer.provideMerge(database), Layer.orDie)

  it.layer(layer, { timeout: 30_000 })((it) => {
    it.effect("turns outcomes and feedback into per-arm results", resultsScenario)

    it.effect("a configured experiment without data answers zeros; an unknown one fails", zerosScenario)

    it.effect("feedback on a session of another tenant, or on none, is SessionNotFound and stores nothing", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const service = yield* Experiments.Experiments
        const sql = yield* SqlClient.SqlClient
        yield* storage.createSession("owner", "mine", at)
        const other = yield* Effect.flip(service.feedback("thief", { session_id: "mine", score: 1 }))
        assert.strictEqual(other._tag, "SessionNotFound")
        const none = yield* Effect.flip(service.feedback("owner", { session_id: "missing", score: 1 }))
        assert.strictEqual(none._tag, "SessionNotFound")
        yield* service.feedback("owner", { session_id: "mine", score: 0.25, comment: "ok\u0000 with a NUL" })
        const rows = yield* sql<{ tenant: string; comment: string | null }>`
          SELECT tenant, comment FROM session_feedback WHERE session_id = ${"mine"}`
        assert.deepStrictEqual(
          rows.map((row) => row.tenant),
          ["owner"]
        )
      })
    )
  })
})

const outcomeOf = (request: number): Experiments.Outcome => ({
  tenant: "t",
  experiment: "empty",
  arm: "local",
  session_id: null,
  request_id: `r${request}`,
  ok: true,
  latency_ms: 1,
  cost_usd: 0
})

describe("Experiments in memory", () => {
  // Storage (SQLite) only creates the sessions the scenario names; the experiments' figures are in memory.
  const layer = Layer.mergeAll(layerSql, Experiments.layerMemory(experiments)).pipe(
    Layer.provideMerge(sqlite),
    Layer.orDie
  )
  it.layer(layer, { timeout: 30_000 })((it) => {
    it.effect("computes the same per-arm results as the databases", resultsScenario)
    it.effect("answers zeros without data and fails for an unknown experiment", zerosScenario)
  })

  it.effect("Experiments.layerMemory records outcomes and knows no experiment", () =>
    Effect.gen(function* () {
      const service = yield* Experiments.Experiments
      yield* service.record(outcomeOf(1))
      const unknown = yield* Effect.flip(service.results("t", "empty"))
      assert.strictEqual(unknown._tag, "ExperimentNotFound")
    }).pipe(Effect.provide(Experiments.Experiments.layerMemory))
  )
})

describe("Experiments.record", () => {
  it.effect("writes outcomes recorded at the same time in one statement", () =>
    Effect.gen(function* () {
      const batches: Array<number> = []
      const counting = ExperimentStorage.ExperimentStorage.of({
        insertOutcomes: (outcomes) => Effect.sync(() => void batches.push(outcomes.length)),
        insertFeedback: () => Effect.succeed(false),
        armStats: () => Effect.succeed([])
      })
      const service = yield* Experiments.make(experiments).pipe(
        Effect.provideService(ExperimentStorage.ExperimentStorage, counting)
      )
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => outcomeOf(i)),
        service.record,
        {
          concurrency: "unbounded",
          discard: true
        }
      )
      assert.strictEqual(
        batches.reduce((sum, size) => sum + size, 0),
        50
      )
      assert.isBelow(batches.length, 5, `batches: ${batches.join(", ")}`)
    })
  )

  it.effect("never fails: an outcome that cannot be stored is logged (without its values) and dropped", () =>
    Effect.gen(function* () {
      const failing = ExperimentStorage.ExperimentStorage.of({
        insertOutcomes: () =>
          Effect.fail(new StorageError({ operation: "insertOutcomes", unavailable: true, cause: "secret-value" })),
        insertFeedback: () => Effect.succeed(false),
        armStats: () => Effect.succeed([])
      })
      const service = yield* Experiments.make(experiments).pipe(
        Effect.provideService(ExperimentStorage.ExperimentStorage, failing)
      )
      const warnings: Array<string> = []
      const collector = Logger.make((options) => {
        if (options.logLevel === "Warn") warnings.push(JSON.stringify(options.message))
      })
      yield* service.record(outcomeOf(1)).pipe(Effect.provide(Logger.layer([collector])))
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "an outcome could not be stored")
      assert.include(warnings[0], "storage is unavailable")
      assert.notInclude(warnings[0], "secret-value")
    })
  )
})
