/**
 * The `current_time` tool: what time it is now in a zone. The moment comes from Effect's
 * `Clock`, so tests set it with `TestClock`.
 */
import { Tool } from "@polyagent/tools"
import { DateTime, Effect, Schema } from "effect"
import * as ZonedTime from "./ZonedTime.ts"

/** The tool's parameters. */
export const CurrentTimeParameters = Schema.Struct({
  timezone: Schema.optionalKey(
    Schema.NullOr(ZonedTime.ZoneName).annotate({
      description: 'IANA time zone, e.g. "Europe/Paris" or "America/New_York"; UTC when omitted'
    })
  )
})

/** Tells the current date and time in a zone (UTC by default); needs no permissions. */
export const CurrentTime = Tool.make("current_time", {
  description:
    "Tells the current date, time, weekday and UTC offset in an IANA time zone (UTC when none is given). Use it whenever an answer depends on today's date or the time now.",
  parameters: CurrentTimeParameters,
  success: ZonedTime.ZonedTime,
  handler: Effect.fn("CurrentTime.handler")(function* ({ timezone }: typeof CurrentTimeParameters.Type) {
    const zone = yield* Effect.fromResult(ZonedTime.zone(timezone ?? "UTC"))
    const now = yield* DateTime.now
    return ZonedTime.describe(DateTime.setZone(now, zone))
  })
})
