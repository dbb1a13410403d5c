import { assert, describe, it } from "@effect/vitest"
import { DateTime, Option, Result } from "effect"
import * as IsoTime from "../src/IsoTime.ts"

const parsed = (input: string): IsoTime.IsoTime => {
  const result = IsoTime.parse(input)
  if (Result.isFailure(result)) return assert.fail(`${input}: ${result.failure.message}`)
  return result.success
}

const refusal = (input: string): string => {
  const result = IsoTime.parse(input)
  if (Result.isSuccess(result)) return assert.fail(`${input} was accepted`)
  return result.failure.message
}

const utc = DateTime.zoneMakeNamedUnsafe("UTC")
const newYork = DateTime.zoneMakeNamedUnsafe("America/New_York")

const instant = (input: string, zone: DateTime.TimeZone = utc): string => {
  const result = IsoTime.read(input, zone)
  if (Result.isFailure(result)) return assert.fail(`${input}: ${result.failure.message}`)
  return DateTime.formatIso(result.success)
}

describe("IsoTime", () => {
  it("reads dates, times, seconds and fractions", () => {
    assert.deepStrictEqual(parsed("2026-03-08").parts, {
      year: 2026,
      month: 3,
      day: 8,
      hour: 0,
      minute: 0,
      second: 0,
      millisecond: 0
    })
    assert.deepStrictEqual(parsed("2026-03-08T14:30").parts, {
      year: 2026,
      month: 3,
      day: 8,
      hour: 14,
      minute: 30,
      second: 0,
      millisecond: 0
    })
    assert.strictEqual(parsed("2026-03-08T14:30:15").parts.second, 15)
    assert.strictEqual(parsed("2026-03-08T14:30:15.5").parts.millisecond, 500)
    assert.strictEqual(parsed("2026-03-08T14:30:15,25").parts.millisecond, 250)
    assert.strictEqual(parsed("2026-03-08T14:30:15.123456789").parts.millisecond, 123)
    assert.strictEqual(parsed("2026-03-08 14:30").parts.hour, 14)
    assert.strictEqual(parsed("2026-03-08t14:30z").parts.hour, 14)
    assert.strictEqual(parsed("  2026-03-08T14:30  ").parts.minute, 30)
  })

  it("reads offsets in milliseconds east of UTC, and bracketed zones", () => {
    assert.deepStrictEqual(parsed("2026-03-08T14:30").offset, Option.none())
    assert.deepStrictEqual(parsed("2026-03-08T14:30Z").offset, Option.some(0))
    assert.deepStrictEqual(parsed("2026-03-08T14:30:00+05:30").offset, Option.some(19_800_000))
    assert.deepStrictEqual(parsed("2026-03-08T14:30:00+0530").offset, Option.some(19_800_000))
    assert.deepStrictEqual(parsed("2026-03-08T14:30:00-08").offset, Option.some(-28_800_000))
    assert.deepStrictEqual(parsed("2026-03-08T14:30[Europe/Paris]").zone, Option.some("Europe/Paris"))
    assert.deepStrictEqual(parsed("2026-03-08T14:30+01:00[Europe/Paris]").offset, Option.some(3_600_000))
  })

  it("checks the calendar, leap years included", () => {
    assert.strictEqual(parsed("2024-02-29").parts.day, 29)
    assert.strictEqual(parsed("2000-02-29").parts.day, 29)
    assert.strictEqual(refusal("2026-02-29"), '"2026-02-29" is not a valid time: 2026-02 has days 01 to 28')
    assert.strictEqual(refusal("1900-02-29"), '"1900-02-29" is not a valid time: 1900-02 has days 01 to 28')
    assert.strictEqual(refusal("2026-04-31T10:00"), '"2026-04-31T10:00" is not a valid time: 2026-04 has days 01 to 30')
    assert.strictEqual(refusal("2026-13-01"), '"2026-13-01" is not a valid time: there is no month 13')
    assert.strictEqual(refusal("2026-00-10"), '"2026-00-10" is not a valid time: there is no month 0')
    assert.strictEqual(refusal("2026-03-00"), '"2026-03-00" is not a valid time: 2026-03 has days 01 to 31')
    assert.strictEqual(refusal("2026-03-08T24:00"), '"2026-03-08T24:00" is not a valid time: the hour must be 00 to 23')
    assert.strictEqual(
      refusal("2026-03-08T12:60"),
      '"2026-03-08T12:60" is not a valid time: the minute must be 00 to 59'
    )
    assert.strictEqual(
      refusal("2026-03-08T12:00:60"),
      '"2026-03-08T12:00:60" is not a valid time: the second must be 00 to 59'
    )
    assert.strictEqual(
      refusal("2026-03-08T12:00+24:00"),
      '"2026-03-08T12:00+24:00" is not a valid time: the UTC offset +24:00 is out of range'
    )
    assert.strictEqual(
      refusal("2026-03-08T12:00+05:60"),
      '"2026-03-08T12:00+05:60" is not a valid time: the UTC offset +05:60 is out of range'
    )
  })

  it("refuses what Date.parse would guess at, showing the forms it reads", () => {
    const forms =
      'write it like "2026-03-08T14:30:00", "2026-03-08T14:30:00-05:00", "2026-03-08T19:30:00Z" or "2026-03-08"'
    assert.strictEqual(refusal("next tuesday"), `cannot read "next tuesday" as an ISO 8601 time: ${forms}`)
    for (const input of [
      "March 8, 2026",
      "2026-03-08T14:30:00 EST",
      "2026-3-8",
      "08/03/2026",
      "1772980200000",
      "2026-03-08T14",
      "2026-03-08Z",
      "",
      `2026-03-08T14:30[${"A".repeat(80)}]`
    ]) {
      assert.include(refusal(input), "as an ISO 8601 time", input)
    }
  })

  it("resolves a written offset, else the bracketed zone, else the local zone", () => {
    assert.strictEqual(instant("2026-03-08T14:30:00+09:00", newYork), "2026-03-08T05:30:00.000Z")
    assert.strictEqual(instant("2026-03-08T14:30:00Z", newYork), "2026-03-08T14:30:00.000Z")
    assert.strictEqual(instant("2026-07-01T12:00[Europe/London]", newYork), "2026-07-01T11:00:00.000Z")
    assert.strictEqual(instant("2026-03-08T14:30:00", newYork), "2026-03-08T18:30:00.000Z")
    assert.strictEqual(instant("2026-03-08T14:30:00"), "2026-03-08T14:30:00.000Z")
    assert.strictEqual(instant("0001-01-01T00:00:00"), "0001-01-01T00:00:00.000Z")
  })

  it("moves a time skipped by daylight saving forward and takes the first of a repeated one", () => {
    assert.strictEqual(instant("2026-03-08T01:59:59", newYork), "2026-03-08T06:59:59.000Z")
    assert.strictEqual(instant("2026-03-08T02:30:00", newYork), "2026-03-08T07:30:00.000Z")
    assert.strictEqual(instant("2026-03-08T03:00:00", newYork), "2026-03-08T07:00:00.000Z")
    assert.strictEqual(instant("2026-11-01T01:30:00", newYork), "2026-11-01T05:30:00.000Z")
    assert.strictEqual(instant("2026-11-01T01:30:00-05:00", newYork), "2026-11-01T06:30:00.000Z")
  })

  it("refuses an unknown bracketed zone, even after an offset", () => {
    for (const input of ["2026-03-08T14:30[Mars/Olympus]", "2026-03-08T14:30+01:00[Mars/Olympus]"]) {
      const result = IsoTime.read(input, utc)
      if (Result.isSuccess(result)) return assert.fail(`${input} was accepted`)
      assert.include(result.failure.message, 'unknown time zone "Mars/Olympus"')
    }
  })
})
