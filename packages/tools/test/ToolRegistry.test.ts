/**
 * Loading plugins the ways users install them — a directory path, a package installed from a
 * local path (a symlink in node_modules, as `npm install ../dir` makes), a packed tarball — and
 * refusing broken ones at start-up with a message that names the plugin.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"
import * as Tool from "../src/Tool.ts"
import * as ToolExecutor from "../src/ToolExecutor.ts"
import * as ToolPlugin from "../src/ToolPlugin.ts"
import * as ToolRegistry from "../src/ToolRegistry.ts"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const repoDir = join(packageDir, "..", "..")
const echoDir = join(packageDir, "test", "fixtures", "plugin-echo")

/** A temporary project directory whose node_modules can see `@polyagent/tools` and `effect`. */
const project = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "polyagent-tools-"))
    mkdirSync(join(dir, "node_modules", "@polyagent"), { recursive: true })
    symlinkSync(packageDir, join(dir, "node_modules", "@polyagent", "tools"), "dir")
    symlinkSync(join(repoDir, "node_modules", "effect"), join(dir, "node_modules", "effect"), "dir")
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const runEcho = (registry: ToolRegistry.ToolRegistry["Service"]) =>
  Effect.gen(function* () {
    const executor = yield* ToolExecutor.make()
    return yield* executor.run({ id: "1", name: "echo", arguments: { text: "hi" } }, new Set())
  }).pipe(Effect.provideService(ToolRegistry.ToolRegistry, registry))

const loadError = (specifiers: ReadonlyArray<string>) => Effect.flip(ToolRegistry.load(specifiers, { cwd: packageDir }))

describe("ToolRegistry", () => {
  it.effect("loads a plugin from a directory path relative to cwd, with its layer's services", () =>
    Effect.gen(function* () {
      const registry = yield* ToolRegistry.load(["./test/fixtures/plugin-echo"], { cwd: packageDir })
      assert.deepStrictEqual(
        registry.tools.map(({ tool, plugin }) => [tool.name, plugin.name, plugin.version]),
        [["echo", "echo", "1.2.3"]]
      )
      assert.isTrue(Option.isSome(registry.get("echo")))
      assert.isTrue(Option.isNone(registry.get("nope")))
      assert.deepStrictEqual(yield* runEcho(registry), {
        id: "1",
        name: "echo",
        status: "ok",
        result: '{"echoed":"echo: hi"}'
      })
    })
  )

  it.effect("loads a plugin by package name from cwd's node_modules, installed from a local path", () =>
    Effect.gen(function* () {
      const dir = yield* project
      symlinkSync(echoDir, join(dir, "node_modules", "polyagent-plugin-echo"), "dir")
      const registry = yield* ToolRegistry.load(["polyagent-plugin-echo"], { cwd: dir })
      assert.deepStrictEqual(
        registry.tools.map(({ tool }) => tool.name),
        ["echo"]
      )
      assert.strictEqual((yield* runEcho(registry)).status, "ok")
    })
  )

  it.effect(
    "loads a plugin installed from a tarball made by npm pack",
    () =>
      Effect.gen(function* () {
        const dir = yield* project
        const packed: unknown = JSON.parse(
          execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: echoDir, encoding: "utf8" })
        )
        const [{ filename }] = Schema.decodeUnknownSync(Schema.Tuple([Schema.Struct({ filename: Schema.String })]))(
          packed
        )
        const installed = join(dir, "node_modules", "polyagent-plugin-echo")
        mkdirSync(installed)
        execFileSync("tar", ["-xzf", join(dir, filename), "-C", installed, "--strip-components=1"])

        const registry = yield* ToolRegistry.load(["polyagent-plugin-echo"], { cwd: dir })
        assert.deepStrictEqual(
          registry.tools.map(({ tool, plugin }) => [tool.name, plugin.name, plugin.version]),
          [["echo", "echo", "1.2.3"]]
        )
        assert.deepStrictEqual(yield* runEcho(registry), {
          id: "1",
          name: "echo",
          status: "ok",
          result: '{"echoed":"echo: hi"}'
        })
      }),
    30_000
  )

  it.effect("says a plugin that is not installed was not found", () =>
    Effect.gen(function* () {
      const dir = yield* project
      const error = yield* Effect.flip(ToolRegistry.load(["polyagent-plugin-missing"], { cwd: dir }))
      assert.strictEqual(error.plugin, "polyagent-plugin-missing")
      assert.strictEqual(error.reason, "not_found")
      assert.include(error.message, 'plugin "polyagent-plugin-missing" was not found')
      const missingPath = yield* loadError(["./test/fixtures/nowhere"])
      assert.strictEqual(missingPath.reason, "not_found")
      assert.include(missingPath.message, 'plugin "./test/fixtures/nowhere" was not found')
    })
  )

  it.effect("refuses a module that throws on import, with its message and no stack", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/throws-on-import.ts"])
      assert.strictEqual(error.plugin, "./test/fixtures/throws-on-import.ts")
      assert.strictEqual(error.reason, "import_failed")
      assert.match(
        error.message,
        /^plugin "\.\/test\/fixtures\/throws-on-import\.ts" failed to import .*: WEATHER_API_KEY is not set$/
      )
    })
  )

  it.effect("refuses a module without a default export", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/no-default-export.ts"])
      assert.strictEqual(error.reason, "not_a_plugin")
      assert.include(error.message, 'plugin "./test/fixtures/no-default-export.ts" has no default export')
    })
  )

  it.effect("refuses a default export not made with ToolPlugin.make", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/plain-object.ts"])
      assert.strictEqual(error.reason, "not_a_plugin")
      assert.include(error.message, 'plugin "./test/fixtures/plain-object.ts" is not a PolyAgent plugin')
    })
  )

  it.effect("refuses a tool name models would reject", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/invalid-tool-name.ts"])
      assert.strictEqual(error.reason, "invalid_tool")
      assert.include(
        error.message,
        'plugin "./test/fixtures/invalid-tool-name.ts" has a tool with an invalid name "get weather"'
      )
    })
  )

  it.effect("refuses a tool name already defined by another plugin, naming both", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/duplicate-a.ts", "./test/fixtures/duplicate-b.ts"])
      assert.strictEqual(error.plugin, "./test/fixtures/duplicate-b.ts")
      assert.strictEqual(error.reason, "duplicate_tool")
      assert.include(error.message, 'tool "lookup" of plugin "lookup-b" is already defined by plugin "lookup-a"')
    })
  )

  it.effect("refuses the same plugin listed twice under two specifiers", () =>
    Effect.gen(function* () {
      const error = yield* loadError(["./test/fixtures/plugin-echo", "./test/fixtures/plugin-echo/lib/index.js"])
      assert.strictEqual(error.reason, "duplicate_plugin")
      assert.strictEqual(
        error.message,
        'plugin "./test/fixtures/plugin-echo/lib/index.js" is plugin "echo" again, already loaded as "./test/fixtures/plugin-echo": list each plugin once'
      )
    })
  )

  it.effect("refuses a plugin whose layer fails or dies, with the layer's message", () =>
    Effect.gen(function* () {
      const fails = yield* loadError(["./test/fixtures/layer-fails.js"])
      assert.strictEqual(fails.reason, "layer_failed")
      assert.strictEqual(
        fails.message,
        'plugin "./test/fixtures/layer-fails.js" failed to start its layer: SEARCH_API_KEY is not set'
      )
      const dies = yield* loadError(["./test/fixtures/layer-dies.ts"])
      assert.strictEqual(dies.reason, "layer_failed")
      assert.strictEqual(
        dies.message,
        'plugin "./test/fixtures/layer-dies.ts" failed to start its layer: cannot open the cache directory'
      )
    })
  )

  it.effect("keeps plugin layers open as long as the registry's scope, and closes them with it", () =>
    Effect.gen(function* () {
      class Connection extends Context.Service<Connection, { readonly open: boolean }>()("test/Connection") {}
      const events = yield* Ref.make<ReadonlyArray<string>>([])
      const plugin = ToolPlugin.make({
        name: "scoped",
        version: "1.0.0",
        tools: [],
        layer: Layer.effect(
          Connection,
          Effect.acquireRelease(
            Effect.as(
              Ref.update(events, (e) => [...e, "open"]),
              { open: true }
            ),
            () => Ref.update(events, (e) => [...e, "closed"])
          )
        )
      })
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* ToolRegistry.fromPlugins([plugin])
          assert.deepStrictEqual(yield* Ref.get(events), ["open"])
        })
      )
      assert.deepStrictEqual(yield* Ref.get(events), ["open", "closed"])
    })
  )

  it.effect("refuses a tool defined twice within one plugin", () =>
    Effect.gen(function* () {
      const ping = Tool.make("ping", {
        description: "Answers pong",
        parameters: Schema.Struct({}),
        success: Schema.String,
        handler: () => Effect.succeed("pong")
      })
      const error = yield* Effect.flip(
        ToolRegistry.fromPlugins([ToolPlugin.make({ name: "twice", version: "1.0.0", tools: [ping, ping] })])
      )
      assert.strictEqual(error.plugin, "twice")
      assert.strictEqual(error.message, 'plugin "twice" defines tool "ping" twice')
    })
  )
})
