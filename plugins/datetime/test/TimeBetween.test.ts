import { assert, describe, it } from "@effect/vitest"
import { Tool } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import { TimeBetween } from "../src/index.ts"
import * as TimeSpan from "../src/TimeBetween.ts"

// As the executor runs a call: decode the model's arguments, run the handler, encode the result.
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(TimeBetween.parameters)(args).pipe(
    Effect.flatMap(TimeBetween.handler),
    Effect.flatMap(Schema.encodeEffect(TimeBetween.success))
  )

describe("time_between", () => {
  it.effect("measures the span in every unit and in words", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* call({ from: "2026-03-06T09:00:00Z", to: "2026-03-08T12:00:00Z" }), {
        seconds: 183_600,
        minutes: 3_060,
        hours: 51,
        days: 2.13,
        human: "2 days 3 hours"
      })
    })
  )

  it.effect("is negative, and says so, when to is before from", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* call({ from: "2026-03-08T12:00:00Z", to: "2026-03-06T09:00:00Z" }), {
        seconds: -183_600,
        minutes: -3_060,
        hours: -51,
        days: -2.13,
        human: "2 days 3 hours (to is before from)"
      })
    })
  )

  it.effect("counts the hour lost when New York starts daylight saving time", () =>
    Effect.gen(function* () {
      const span = yield* call({ from: "2026-03-07T12:00", to: "2026-03-08T12:00", timezone: "America/New_York" })
      assert.deepStrictEqual(span, { seconds: 82_800, minutes: 1_380, hours: 23, days: 0.96, human: "23 hours" })
      const inUtc = yield* call({ from: "2026-03-07T12:00", to: "2026-03-08T12:00" })
      assert.strictEqual(inUtc.human, "1 day")
      const fallBack = yield* call({ from: "2026-10-31T12:00", to: "2026-11-01T12:00", timezone: "America/New_York" })
      assert.strictEqual(fallBack.human, "1 day 1 hour")
    })
  )

  it.effect("compares times written with different offsets", () =>
    Effect.gen(function* () {
      const span = yield* call({ from: "2026-03-08T12:00:00+01:00", to: "2026-03-08T12:00:00Z" })
      assert.strictEqual(span.hours, 1)
      assert.strictEqual(span.human, "1 hour")
    })
  )

  it("writes singulars, plurals, zero and less than a second", () => {
    assert.strictEqual(TimeSpan.human(90_061_000), "1 day 1 hour 1 minute 1 second")
    assert.strictEqual(TimeSpan.human(2 * 90_061_000), "2 days 2 hours 2 minutes 2 seconds")
    assert.strictEqual(TimeSpan.human(3_600_000 + 5_000), "1 hour 5 seconds")
    assert.strictEqual(TimeSpan.human(0), "0 seconds")
    assert.strictEqual(TimeSpan.human(500), "less than a second")
    assert.strictEqual(TimeSpan.human(-1_500), "1 second (to is before from)")
    assert.deepStrictEqual(TimeSpan.span(500), {
      seconds: 0.5,
      minutes: 0.01,
      hours: 0,
      days: 0,
      human: "less than a second"
    })
    assert.isFalse(Object.is(TimeSpan.span(-1).hours, -0))
  })

  it.effect("fails with a clear message on an unreadable time or an unknown zone", () =>
    Effect.gen(function* () {
      const unreadable = yield* Effect.flip(TimeBetween.handler({ from: "2026-03-08", to: "in two weeks" }))
      assert.instanceOf(unreadable, Tool.ToolFailure)
      assert.include(unreadable.message, 'cannot read "in two weeks" as an ISO 8601 time')
      const zone = yield* Effect.flip(
        TimeBetween.handler({ from: "2026-03-08", to: "2026-03-09", timezone: "Nowhere" })
      )
      assert.include(zone.message, 'unknown time zone "Nowhere"')
    })
  )
})
