/**
 * A moment as the datetime tools answer it: the IANA zone, an ISO 8601 string with the UTC offset
 * in force, and the date, wall-clock time, weekday and offset spelled out, so the model reads them
 * instead of working them out. Also the lookup of zone names, which the tools share.
 */
import { Tool } from "@polyagent/tools"
import { DateTime, Option, Result, Schema } from "effect"

/** The result of `current_time` and `convert_time`. */
export const ZonedTime = Schema.Struct({
  timezone: Schema.String.annotate({ description: "The IANA time zone, e.g. America/New_York" }),
  iso: Schema.String.annotate({ description: "ISO 8601 with the UTC offset, e.g. 2026-03-08T03:30:00-04:00" }),
  date: Schema.String.annotate({ description: "YYYY-MM-DD in that zone" }),
  time: Schema.String.annotate({ description: "HH:mm:ss (24-hour clock) in that zone" }),
  weekday: Schema.String.annotate({ description: "Monday … Sunday, in English" }),
  utc_offset: Schema.String.annotate({ description: "The offset from UTC in force at that moment, e.g. -04:00" })
})
export type ZonedTime = typeof ZonedTime.Type

/** The longest zone name accepted; IANA names are far shorter. */
export const maxZoneLength = 100

/** A zone-name parameter, optional where `undefined` or `null` means UTC. */
export const ZoneName = Schema.String.check(Schema.isMaxLength(maxZoneLength))

/**
 * The named zone `name`: an IANA name such as `Europe/Paris` or `UTC` (any case; the result
 * carries the canonical spelling). Anything `Intl` does not know fails with a `ToolFailure`.
 */
export const zone = (name: string): Result.Result<DateTime.TimeZone.Named, Tool.ToolFailure> =>
  Option.match(DateTime.zoneMakeNamed(name), {
    onNone: () =>
      Result.fail(
        new Tool.ToolFailure({
          message: `unknown time zone ${JSON.stringify(name)}: use an IANA name such as "UTC", "Europe/Paris" or "America/New_York"`
        })
      ),
    onSome: Result.succeed
  })

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

// ISO 8601 needs a sign and six digits outside 0000–9999.
const isoYear = (year: number): string =>
  year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? "-" : "+"}${pad(Math.abs(year), 6)}`

/**
 * Describes `self` in its own zone. `iso` shows milliseconds only when there are some; `time`
 * never does.
 */
export const describe = (self: DateTime.Zoned): ZonedTime => {
  const parts = DateTime.toParts(self)
  const date = `${isoYear(parts.year)}-${pad(parts.month, 2)}-${pad(parts.day, 2)}`
  const time = `${pad(parts.hour, 2)}:${pad(parts.minute, 2)}:${pad(parts.second, 2)}`
  const fraction = parts.millisecond === 0 ? "" : `.${pad(parts.millisecond, 3)}`
  const utcOffset = DateTime.zonedOffsetIso(self)
  return {
    timezone: DateTime.zoneToString(self.zone),
    iso: `${date}T${time}${fraction}${utcOffset}`,
    date,
    time,
    weekday: DateTime.format(self, { weekday: "long", locale: "en-US" }),
    utc_offset: utcOffset
  }
}
