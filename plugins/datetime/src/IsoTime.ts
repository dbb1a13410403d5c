/**
 * Reads the times the datetime tools are given: ISO 8601 calendar dates and times as a model
 * writes them (`2026-03-08`, `2026-03-08T14:30`, `2026-03-08 14:30:00.250`,
 * `2026-03-08T14:30:00-05:00`, `…Z`), optionally followed by a bracketed zone as in RFC 9557
 * (`2026-03-08T14:30[America/New_York]`). Stricter than `Date.parse`, which takes
 * "March 8" or "2026-02-30" without a word: a time either means one instant or is refused with a
 * message that shows the forms accepted.
 */
import { Tool } from "@polyagent/tools"
import { DateTime, Option, Result } from "effect"
import * as ZonedTime from "./ZonedTime.ts"

/** The longest time string accepted. */
export const maxLength = 100

/** A wall-clock date and time, month and day counted from 1. */
export interface LocalParts {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hour: number
  readonly minute: number
  readonly second: number
  readonly millisecond: number
}

/** A parsed time: its wall-clock parts, and the offset or zone they are in when the input says. */
export interface IsoTime {
  readonly parts: LocalParts
  /** The UTC offset written in the input, in milliseconds (`Z` is 0). */
  readonly offset: Option.Option<number>
  /** The zone written in brackets after the time. */
  readonly zone: Option.Option<string>
}

// YYYY-MM-DD, then optionally T (or a space) HH:mm[:ss[.fraction]] with an optional offset
// (Z, ±HH, ±HHmm, ±HH:mm), then an optional [Zone/Name]. An offset needs a time.
const pattern =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?(?:\[([^\]]{1,64})\])?$/

const forms = '"2026-03-08T14:30:00", "2026-03-08T14:30:00-05:00", "2026-03-08T19:30:00Z" or "2026-03-08"'

const failure = (message: string) => Result.fail(new Tool.ToolFailure({ message }))

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

const daysInMonth = (year: number, month: number): number =>
  month === 2 ? (isLeapYear(year) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31

const number = (digits: string | undefined): number => (digits === undefined ? 0 : Number(digits))

// "Z", "+05:30", "-0800", "+01" → milliseconds east of UTC; undefined when out of range
const offsetMillis = (text: string): number | undefined => {
  if (text === "Z" || text === "z") return 0
  const digits = text.slice(1).replace(":", "")
  const hours = Number(digits.slice(0, 2))
  const minutes = Number(digits.slice(2) || "0")
  if (hours > 23 || minutes > 59) return undefined
  return (text.startsWith("-") ? -1 : 1) * (hours * 60 + minutes) * 60_000
}

/** Parses `input`; fails with a `ToolFailure` that says what is wrong or shows the forms accepted. */
export const parse = (input: string): Result.Result<IsoTime, Tool.ToolFailure> => {
  const text = input.trim()
  const match = text.length <= maxLength ? pattern.exec(text) : null
  if (match === null) {
    return failure(`cannot read ${JSON.stringify(input)} as an ISO 8601 time: write it like ${forms}`)
  }
  const [, year, month, day, hour, minute, second, fraction, offsetText, zoneName] = match
  const parts: LocalParts = {
    year: number(year),
    month: number(month),
    day: number(day),
    hour: number(hour),
    minute: number(minute),
    second: number(second),
    // Digits past milliseconds are dropped: DateTime counts milliseconds.
    millisecond: fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, "0"))
  }
  const invalid = (why: string) => failure(`${JSON.stringify(input)} is not a valid time: ${why}`)
  if (parts.month < 1 || parts.month > 12) return invalid(`there is no month ${parts.month}`)
  const days = daysInMonth(parts.year, parts.month)
  if (parts.day < 1 || parts.day > days) return invalid(`${year}-${month} has days 01 to ${days}`)
  if (parts.hour > 23) return invalid("the hour must be 00 to 23")
  if (parts.minute > 59) return invalid("the minute must be 00 to 59")
  if (parts.second > 59) return invalid("the second must be 00 to 59")
  const zone = Option.fromUndefinedOr(zoneName)
  if (offsetText === undefined) return Result.succeed({ parts, offset: Option.none(), zone })
  const offset = offsetMillis(offsetText)
  if (offset === undefined) return invalid(`the UTC offset ${offsetText} is out of range`)
  return Result.succeed({ parts, offset: Option.some(offset), zone })
}

/**
 * The instant `time` means. A written offset decides it; otherwise the wall-clock time is read
 * in the bracketed zone if there is one, else in `localZone`. A wall-clock time that a change to
 * daylight saving time skips (02:30 on 2026-03-08 in New York) is moved forward by the length of
 * the gap (to 03:30 EDT); one that happens twice when clocks go back is the earlier of the two.
 */
export const toDateTime = (
  time: IsoTime,
  localZone: DateTime.TimeZone
): Result.Result<DateTime.Zoned, Tool.ToolFailure> => {
  let timeZone: DateTime.TimeZone = localZone
  // A bracketed zone is checked even when an offset decides: a wrong name is a mistake to report.
  if (Option.isSome(time.zone)) {
    const named = ZonedTime.zone(time.zone.value)
    if (Result.isFailure(named)) return Result.fail(named.failure)
    timeZone = named.success
  }
  if (Option.isSome(time.offset)) timeZone = DateTime.zoneMakeOffset(time.offset.value)
  return Option.match(DateTime.makeZoned(time.parts, { timeZone, adjustForTimeZone: true }), {
    onNone: () => failure("the time is outside the range of dates that can be represented"),
    onSome: Result.succeed
  })
}

/** {@link parse} then {@link toDateTime}. */
export const read = (input: string, localZone: DateTime.TimeZone): Result.Result<DateTime.Zoned, Tool.ToolFailure> =>
  Result.flatMap(parse(input), (time) => toDateTime(time, localZone))
