import { assert, describe, it } from "@effect/vitest"
import { Tool } from "@polyagent/tools"
import { DateTime, Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import plugin, { CurrentTime } from "../src/index.ts"

// As the executor runs a call: decode the model's arguments, run the handler, encode the result.
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(CurrentTime.parameters)(args).pipe(
    Effect.flatMap(CurrentTime.handler),
    Effect.flatMap(Schema.encodeEffect(CurrentTime.success))
  )

const setNow = (iso: string) => TestClock.setTime(DateTime.toEpochMillis(DateTime.makeUnsafe(iso)))

describe("datetime plugin", () => {
  it("offers current_time, convert_time and time_between, needing no permissions", () => {
    assert.strictEqual(plugin.name, "@polyagent/plugin-datetime")
    assert.strictEqual(plugin.version, "0.1.0")
    assert.deepStrictEqual(
      plugin.tools.map((tool) => tool.name),
      ["current_time", "convert_time", "time_between"]
    )
    for (const tool of plugin.tools) {
      assert.isTrue(Tool.isTool(tool))
      assert.isTrue(Tool.namePattern.test(tool.name))
      assert.deepStrictEqual(tool.permissions, [])
      assert.strictEqual(Tool.jsonSchema(tool)["type"], "object")
    }
    assert.deepStrictEqual(Tool.jsonSchema(plugin.tools[1] ?? CurrentTime)["required"], ["time", "to_timezone"])
    assert.deepStrictEqual(Tool.jsonSchema(plugin.tools[2] ?? CurrentTime)["required"], ["from", "to"])
  })
})

describe("current_time", () => {
  it.effect("tells the time in UTC by default, from the Clock", () =>
    Effect.gen(function* () {
      yield* setNow("2026-03-08T06:59:59Z")
      const expected = {
        timezone: "UTC",
        iso: "2026-03-08T06:59:59+00:00",
        date: "2026-03-08",
        time: "06:59:59",
        weekday: "Sunday",
        utc_offset: "+00:00"
      }
      assert.deepStrictEqual(yield* call({}), expected)
      assert.deepStrictEqual(yield* call({ timezone: null }), expected)
    })
  )

  it.effect("follows New York across the start of daylight saving time on 2026-03-08", () =>
    Effect.gen(function* () {
      yield* setNow("2026-03-08T06:59:59Z")
      assert.deepStrictEqual(yield* call({ timezone: "America/New_York" }), {
        timezone: "America/New_York",
        iso: "2026-03-08T01:59:59-05:00",
        date: "2026-03-08",
        time: "01:59:59",
        weekday: "Sunday",
        utc_offset: "-05:00"
      })
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* call({ timezone: "America/New_York" }), {
        timezone: "America/New_York",
        iso: "2026-03-08T03:00:00-04:00",
        date: "2026-03-08",
        time: "03:00:00",
        weekday: "Sunday",
        utc_offset: "-04:00"
      })
    })
  )

  it.effect("rolls the date and weekday with the zone, and handles part-hour offsets", () =>
    Effect.gen(function* () {
      yield* setNow("2026-03-08T06:59:59.250Z")
      const honolulu = yield* call({ timezone: "Pacific/Honolulu" })
      assert.strictEqual(honolulu.iso, "2026-03-07T20:59:59.250-10:00")
      assert.strictEqual(honolulu.time, "20:59:59")
      assert.strictEqual(honolulu.weekday, "Saturday")
      const kathmandu = yield* call({ timezone: "Asia/Kathmandu" })
      assert.strictEqual(kathmandu.iso, "2026-03-08T12:44:59.250+05:45")
      assert.strictEqual(kathmandu.utc_offset, "+05:45")
    })
  )

  it.effect("answers with the canonical spelling of the zone", () =>
    Effect.gen(function* () {
      yield* setNow("2026-07-01T12:00:00Z")
      const paris = yield* call({ timezone: "europe/paris" })
      assert.strictEqual(paris.timezone, "Europe/Paris")
      assert.strictEqual(paris.iso, "2026-07-01T14:00:00+02:00")
    })
  )

  it.effect("fails on an unknown zone with a message naming it", () =>
    Effect.gen(function* () {
      const failure = yield* Effect.flip(CurrentTime.handler({ timezone: "Mars/Olympus" }))
      assert.instanceOf(failure, Tool.ToolFailure)
      assert.strictEqual(
        failure.message,
        'unknown time zone "Mars/Olympus": use an IANA name such as "UTC", "Europe/Paris" or "America/New_York"'
      )
      assert.include((yield* Effect.flip(CurrentTime.handler({ timezone: "" }))).message, "unknown time zone")
    })
  )
})
