/**
 * Durations in the configuration: `"500 millis"`, `"60 seconds"`, `"60s"`, `"2m"` or a number of
 * milliseconds, decoded to `Duration`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"

const durationUnits = new Map<string, Duration.Unit>([
  ...["ms", "milli", "millis"].map((u) => [u, "millis"] as const),
  ...["s", "sec", "second", "seconds"].map((u) => [u, "seconds"] as const),
  ...["m", "min", "minute", "minutes"].map((u) => [u, "minutes"] as const),
  ...["h", "hour", "hours"].map((u) => [u, "hours"] as const),
  ...["d", "day", "days"].map((u) => [u, "days"] as const)
])
const parseDuration = (input: string | number): Option.Option<Duration.Duration> => {
  if (typeof input === "number") {
    return Number.isFinite(input) && input >= 0 ? Option.some(Duration.millis(input)) : Option.none()
  }
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(input.trim())
  const unit = durationUnits.get(match?.[2] ?? "")
  if (match?.[1] === undefined || unit === undefined) return Option.none()
  const text: Duration.Input = `${Number(match[1])} ${unit}`
  return Duration.fromInput(text)
}
const durationExpected = 'a duration such as "500 millis", "60s" or "2m", or a number of milliseconds'
/** A duration written as `"500 millis"`, `"60 seconds"`, `"60s"`, `"2m"` or a number of milliseconds. */
export const DurationSetting = Schema.Union([Schema.String, Schema.Number]).pipe(
  Schema.decodeTo(
    Schema.Duration,
    SchemaTransformation.transformEffect({
      decode: (input, options) =>
        Option.match(parseDuration(input), {
          onNone: () => Effect.fail(new SchemaIssue.InvalidValue({ expected: durationExpected }, input, options)),
          onSome: Effect.succeed
        }),
      encode: (duration) => Effect.succeed(Duration.toMillis(duration))
    })
  )
)
