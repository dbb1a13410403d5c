/**
 * The published form of the plugin SDK: `npm pack` of `@polyagent/tools` and of a plugin
 * (`@polyagent/plugin-math`), installed with `npm install` into an empty folder outside the
 * repository, import under plain Node, and the plugin's tool loads and runs there. Node does
 * not strip types under `node_modules`, so this fails when a package ships TypeScript to Node.
 * Offline: `effect` comes from the repository's own `node_modules` (npm links a directory).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { repoRoot } from "../src/harness.ts"

/** `npm pack` of the package in `dir` into `destination`; the tarball's file name. */
const pack = (dir: string, destination: string): string => {
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", destination], {
    cwd: join(repoRoot, dir),
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"]
  })
  const packed: unknown = JSON.parse(out)
  if (!Array.isArray(packed) || typeof packed[0]?.filename !== "string") throw new Error(`npm pack said: ${out}`)
  return packed[0].filename
}

// Runs in the consumer folder: load the plugin by name through the installed SDK, run its tool.
const consumer = `
import { Effect } from "effect"
import { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import plugin from "@polyagent/plugin-math"
const run = Effect.gen(function* () {
  const registry = yield* ToolRegistry.load(["@polyagent/plugin-math"], { cwd: process.cwd() })
  const executor = yield* ToolExecutor.make().pipe(Effect.provideService(ToolRegistry.ToolRegistry, registry))
  const result = yield* executor.run({ id: "1", name: "calculate", arguments: { expression: "2 * (3 + 4)" } }, new Set())
  return { plugin: plugin.name, tools: registry.tools.map(({ tool }) => tool.name), result }
})
console.log(JSON.stringify(await Effect.runPromise(Effect.scoped(run))))
`

describe("packed packages", () => {
  it("@polyagent/tools and a plugin installed from their tarballs outside the repository load and run under Node", () => {
    const dir = mkdtempSync(join(tmpdir(), "polyagent-packed-"))
    try {
      const tools = pack("packages/tools", dir)
      const math = pack("plugins/math", dir)
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
      execFileSync(
        "npm",
        [
          "install",
          "--offline",
          "--no-audit",
          "--no-fund",
          "--ignore-scripts",
          join(repoRoot, "node_modules", "effect"),
          `./${tools}`,
          `./${math}`
        ],
        { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }
      )
      // Real copies from the tarballs, not links into the repository.
      assert.isTrue(lstatSync(join(dir, "node_modules", "@polyagent", "tools")).isDirectory())
      assert.isTrue(lstatSync(join(dir, "node_modules", "@polyagent", "plugin-math")).isDirectory())

      const out = execFileSync(process.execPath, ["--input-type=module", "-e", consumer], {
        cwd: dir,
        encoding: "utf8"
      })
      assert.deepStrictEqual(JSON.parse(out), {
        plugin: "@polyagent/plugin-math",
        tools: ["calculate"],
        result: { id: "1", name: "calculate", status: "ok", result: '{"expression":"2 * (3 + 4)","result":14}' }
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
