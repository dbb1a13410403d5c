/**
 * The `convert_time` tool: the same instant on another zone's clock ("3 pm in Tokyo is what in
 * Paris?"). A time without an offset is wall-clock time in `from_timezone`, which is where
 * daylight saving time matters; see `IsoTime.toDateTime` for skipped and repeated times.
 */
import { Tool } from "@polyagent/tools"
import { DateTime, Effect, Schema } from "effect"
import * as IsoTime from "./IsoTime.ts"
import * as ZonedTime from "./ZonedTime.ts"

/** The tool's parameters. */
export const ConvertTimeParameters = Schema.Struct({
  time: Schema.String.check(Schema.isMaxLength(IsoTime.maxLength)).annotate({
    description:
      'ISO 8601 date and time, e.g. "2026-03-08T14:30:00", "2026-03-08T14:30:00-05:00" or "2026-03-08"; without an offset it is read in from_timezone'
  }),
  from_timezone: Schema.optionalKey(
    Schema.NullOr(ZonedTime.ZoneName).annotate({
      description: "IANA time zone of a time written without an offset; UTC when omitted"
    })
  ),
  to_timezone: ZonedTime.ZoneName.annotate({ description: 'IANA time zone to convert to, e.g. "Asia/Tokyo"' })
})

/** Converts a time to another zone; needs no permissions. */
export const ConvertTime = Tool.make("convert_time", {
  description:
    "Converts a date and time to another IANA time zone, taking daylight saving time into account, and tells the date, time, weekday and UTC offset there.",
  parameters: ConvertTimeParameters,
  success: ZonedTime.ZonedTime,
  handler: Effect.fn("ConvertTime.handler")(function* (params: typeof ConvertTimeParameters.Type) {
    const from = yield* Effect.fromResult(ZonedTime.zone(params.from_timezone ?? "UTC"))
    const to = yield* Effect.fromResult(ZonedTime.zone(params.to_timezone))
    const instant = yield* Effect.fromResult(IsoTime.read(params.time, from))
    return ZonedTime.describe(DateTime.setZone(instant, to))
  })
})
