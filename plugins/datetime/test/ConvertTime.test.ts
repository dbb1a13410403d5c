import { assert, describe, it } from "@effect/vitest"
import { Tool } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import { ConvertTime } from "../src/index.ts"

// As the executor runs a call: decode the model's arguments, run the handler, encode the result.
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(ConvertTime.parameters)(args).pipe(
    Effect.flatMap(ConvertTime.handler),
    Effect.flatMap(Schema.encodeEffect(ConvertTime.success))
  )

const failure = (args: typeof ConvertTime.parameters.Type) =>
  Effect.flip(ConvertTime.handler(args)).pipe(
    Effect.map((error) => {
      assert.instanceOf(error, Tool.ToolFailure)
      return error.message
    })
  )

describe("convert_time", () => {
  it.effect("converts a time with an offset, whatever from_timezone says", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* call({ time: "2026-03-08T19:30:00Z", to_timezone: "Asia/Tokyo", from_timezone: "America/New_York" }),
        {
          timezone: "Asia/Tokyo",
          iso: "2026-03-09T04:30:00+09:00",
          date: "2026-03-09",
          time: "04:30:00",
          weekday: "Monday",
          utc_offset: "+09:00"
        }
      )
      const paris = yield* call({ time: "2026-03-08T14:30:00+09:00", to_timezone: "Europe/Paris" })
      assert.strictEqual(paris.iso, "2026-03-08T06:30:00+01:00")
    })
  )

  it.effect("reads a time without an offset in from_timezone, UTC by default", () =>
    Effect.gen(function* () {
      const fromTokyo = yield* call({ time: "2026-03-08", from_timezone: "Asia/Tokyo", to_timezone: "UTC" })
      assert.deepStrictEqual(fromTokyo, {
        timezone: "UTC",
        iso: "2026-03-07T15:00:00+00:00",
        date: "2026-03-07",
        time: "15:00:00",
        weekday: "Saturday",
        utc_offset: "+00:00"
      })
      const fromUtc = yield* call({ time: "2026-03-08T12:00", to_timezone: "America/Los_Angeles" })
      assert.strictEqual(fromUtc.iso, "2026-03-08T05:00:00-07:00")
      const fromNull = yield* call({ time: "2026-03-08T12:00", from_timezone: null, to_timezone: "Asia/Kolkata" })
      assert.strictEqual(fromNull.iso, "2026-03-08T17:30:00+05:30")
    })
  )

  it.effect("gets New York's offsets right on both sides of 2026-03-08 02:00", () =>
    Effect.gen(function* () {
      const inNewYork = (time: string) => call({ time, from_timezone: "America/New_York", to_timezone: "UTC" })
      assert.strictEqual((yield* inNewYork("2026-03-08T01:59:59")).iso, "2026-03-08T06:59:59+00:00")
      assert.strictEqual((yield* inNewYork("2026-03-08T03:00:00")).iso, "2026-03-08T07:00:00+00:00")
      const back = yield* call({ time: "2026-03-08T07:00:00Z", to_timezone: "America/New_York" })
      assert.strictEqual(back.iso, "2026-03-08T03:00:00-04:00")
      assert.strictEqual(back.utc_offset, "-04:00")
      const before = yield* call({ time: "2026-03-08T06:59:59Z", to_timezone: "America/New_York" })
      assert.strictEqual(before.iso, "2026-03-08T01:59:59-05:00")
    })
  )

  it.effect("moves a wall-clock time skipped by the change forward by the gap", () =>
    Effect.gen(function* () {
      const skipped = yield* call({
        time: "2026-03-08T02:30:00",
        from_timezone: "America/New_York",
        to_timezone: "America/New_York"
      })
      assert.strictEqual(skipped.iso, "2026-03-08T03:30:00-04:00")
    })
  )

  it.effect("takes the first of a wall-clock time repeated when clocks go back, unless an offset says", () =>
    Effect.gen(function* () {
      const first = yield* call({ time: "2026-11-01T01:30:00", from_timezone: "America/New_York", to_timezone: "UTC" })
      assert.strictEqual(first.iso, "2026-11-01T05:30:00+00:00")
      const second = yield* call({ time: "2026-11-01T01:30:00-05:00", to_timezone: "America/New_York" })
      assert.strictEqual(second.iso, "2026-11-01T01:30:00-05:00")
    })
  )

  it.effect("reads the zone in brackets after a time", () =>
    Effect.gen(function* () {
      const london = yield* call({ time: "2026-07-01T12:00:00[Europe/London]", to_timezone: "UTC" })
      assert.strictEqual(london.iso, "2026-07-01T11:00:00+00:00")
    })
  )

  it.effect("keeps milliseconds", () =>
    Effect.gen(function* () {
      const converted = yield* call({ time: "2026-03-08T12:00:00.042Z", to_timezone: "Europe/Berlin" })
      assert.strictEqual(converted.iso, "2026-03-08T13:00:00.042+01:00")
      assert.strictEqual(converted.time, "13:00:00")
    })
  )

  it.effect("fails with a clear message on unknown zones and unreadable times", () =>
    Effect.gen(function* () {
      assert.include(
        yield* failure({ time: "2026-03-08T12:00:00Z", to_timezone: "Europe/Springfield" }),
        'unknown time zone "Europe/Springfield"'
      )
      assert.include(
        yield* failure({ time: "2026-03-08T12:00:00", from_timezone: "EST5EDT7", to_timezone: "UTC" }),
        'unknown time zone "EST5EDT7"'
      )
      assert.strictEqual(
        yield* failure({ time: "tomorrow at noon", to_timezone: "UTC" }),
        'cannot read "tomorrow at noon" as an ISO 8601 time: write it like "2026-03-08T14:30:00", "2026-03-08T14:30:00-05:00", "2026-03-08T19:30:00Z" or "2026-03-08"'
      )
      assert.strictEqual(
        yield* failure({ time: "2026-02-30T10:00:00", to_timezone: "UTC" }),
        '"2026-02-30T10:00:00" is not a valid time: 2026-02 has days 01 to 28'
      )
    })
  )
})
