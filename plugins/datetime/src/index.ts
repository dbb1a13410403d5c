/**
 * `@polyagent/plugin-datetime`: a PolyAgent tool plugin that tells the time in any IANA zone
 * (`current_time`), converts times between zones (`convert_time`) and measures the time between
 * two moments (`time_between`), daylight saving time included. Install it next to PolyAgent and
 * list it under `plugins:` in `config/polyagent.yaml`.
 */
import { ToolPlugin } from "@polyagent/tools"
import { ConvertTime } from "./ConvertTime.ts"
import { CurrentTime } from "./CurrentTime.ts"
import { TimeBetween } from "./TimeBetween.ts"

export { ConvertTime } from "./ConvertTime.ts"
export { CurrentTime } from "./CurrentTime.ts"
export { TimeBetween } from "./TimeBetween.ts"

/** The plugin PolyAgent loads: the default export of the package. */
export default ToolPlugin.make({
  name: "@polyagent/plugin-datetime",
  version: "0.1.0",
  tools: [CurrentTime, ConvertTime, TimeBetween]
})
