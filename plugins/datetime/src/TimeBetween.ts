/**
 * The `time_between` tool: how much time passes from one moment to another, in seconds,
 * minutes, hours and days, and in words ("2 days 3 hours"). It measures elapsed time: a day is
 * 24 hours, so across the start of daylight saving time noon to noon is 23 hours.
 */
import { Tool } from "@polyagent/tools"
import { DateTime, Effect, Schema } from "effect"
import * as IsoTime from "./IsoTime.ts"
import * as ZonedTime from "./ZonedTime.ts"

const Time = Schema.String.check(Schema.isMaxLength(IsoTime.maxLength))

/** The tool's parameters. */
export const TimeBetweenParameters = Schema.Struct({
  from: Time.annotate({ description: 'ISO 8601 start, e.g. "2026-03-06T09:00:00" or "2026-03-06T09:00:00+01:00"' }),
  to: Time.annotate({ description: 'ISO 8601 end, e.g. "2026-03-08T12:00:00Z"' }),
  timezone: Schema.optionalKey(
    Schema.NullOr(ZonedTime.ZoneName).annotate({
      description: "IANA time zone of times written without an offset; UTC when omitted"
    })
  )
})

/** The tool's result: the span in each unit, negative when `to` is before `from`. */
export const TimeSpan = Schema.Struct({
  seconds: Schema.Finite.annotate({ description: "The whole span in seconds (milliseconds as decimals)" }),
  minutes: Schema.Finite.annotate({ description: "The whole span in minutes, to 2 decimals" }),
  hours: Schema.Finite.annotate({ description: "The whole span in hours, to 2 decimals" }),
  days: Schema.Finite.annotate({ description: "The whole span in 24-hour days, to 2 decimals" }),
  human: Schema.String.annotate({ description: 'The span in words, e.g. "2 days 3 hours 5 minutes"' })
})
export type TimeSpan = typeof TimeSpan.Type

const units: ReadonlyArray<readonly [name: string, seconds: number]> = [
  ["day", 86_400],
  ["hour", 3_600],
  ["minute", 60],
  ["second", 1]
]

// Rounds halves away from zero, so a span and its reverse differ only in sign; `+ 0` drops -0.
const round2 = (x: number): number => (Math.sign(x) * Math.round(Math.abs(x) * 100)) / 100 + 0

/** The span in words: days, hours, minutes and seconds that are not zero; milliseconds are left out. */
export const human = (millis: number): string => {
  let rest = Math.floor(Math.abs(millis) / 1000)
  const words: Array<string> = []
  for (const [name, seconds] of units) {
    const count = Math.floor(rest / seconds)
    rest -= count * seconds
    if (count > 0) words.push(`${count} ${name}${count === 1 ? "" : "s"}`)
  }
  const text = words.length > 0 ? words.join(" ") : millis === 0 ? "0 seconds" : "less than a second"
  return millis < 0 ? `${text} (to is before from)` : text
}

/** The span of `millis` milliseconds in every unit. */
export const span = (millis: number): TimeSpan => ({
  seconds: millis / 1000 + 0,
  minutes: round2(millis / 60_000),
  hours: round2(millis / 3_600_000),
  days: round2(millis / 86_400_000),
  human: human(millis)
})

/** Measures the time from `from` to `to`; needs no permissions. */
export const TimeBetween = Tool.make("time_between", {
  description:
    "Measures the time elapsed from one date and time to another, in seconds, minutes, hours, 24-hour days and words. Times without an offset are read in `timezone` (UTC when omitted), so daylight saving changes count.",
  parameters: TimeBetweenParameters,
  success: TimeSpan,
  handler: Effect.fn("TimeBetween.handler")(function* (params: typeof TimeBetweenParameters.Type) {
    const zone = yield* Effect.fromResult(ZonedTime.zone(params.timezone ?? "UTC"))
    const from = yield* Effect.fromResult(IsoTime.read(params.from, zone))
    const to = yield* Effect.fromResult(IsoTime.read(params.to, zone))
    return span(DateTime.toEpochMillis(to) - DateTime.toEpochMillis(from))
  })
})
