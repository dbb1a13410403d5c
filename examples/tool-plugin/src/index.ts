/**
 * `polyagent-plugin-example`: the template of a PolyAgent tool plugin, with one tool,
 * `word_count`. A plugin is an npm package whose default export is `ToolPlugin.make(…)`;
 * PolyAgent imports it by the name listed under `plugins:` in its config.
 */
import { ToolPlugin } from "@polyagent/tools"
import { WordCount } from "./WordCount.ts"

export { WordCount } from "./WordCount.ts"

/**
 * The plugin PolyAgent loads. `name` and `version` show up in PolyAgent's errors and listings:
 * keep them equal to package.json's. A plugin whose tools need a service (a client, a cache)
 * also passes `layer`, a Layer that provides it and neither fails nor needs anything.
 */
export default ToolPlugin.make({
  name: "polyagent-plugin-example",
  version: "0.1.0",
  tools: [WordCount]
})
