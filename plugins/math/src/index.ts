/**
 * `@polyagent/plugin-math`: a PolyAgent tool plugin with one tool, `calculate`, a safe
 * evaluator of arithmetic expressions (no `eval`). Install it next to PolyAgent and list it
 * under `plugins:` in `config/polyagent.yaml`.
 */
import { ToolPlugin } from "@polyagent/tools"
import { Calculate } from "./Calculate.ts"

export { Calculate } from "./Calculate.ts"

/** The plugin PolyAgent loads: the default export of the package. */
export default ToolPlugin.make({
  name: "@polyagent/plugin-math",
  version: "0.1.0",
  tools: [Calculate]
})
