/**
 * The tools PolyAgent can offer models, loaded from the plugins named in config. Each specifier
 * (a package name resolved from the configured directory, or a path) is imported, its default
 * export checked to be a `ToolPlugin` whose tools have valid, unique names, and its `layer`
 * built in the registry's scope. Anything wrong stops start-up with a `PluginLoadError` that
 * names the plugin and says what to fix; a registry is never half-loaded.
 */
import { pathToFileURL } from "node:url"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { messageOf, resolvePluginEntry } from "./internal/pluginEntry.ts"
import * as Tool from "./Tool.ts"
import * as ToolPlugin from "./ToolPlugin.ts"

/** Why a plugin could not be loaded. */
export const PluginLoadErrorReason = Schema.Literals([
  "not_found",
  "import_failed",
  "not_a_plugin",
  "invalid_tool",
  "duplicate_plugin",
  "duplicate_tool",
  "layer_failed"
])
export type PluginLoadErrorReason = typeof PluginLoadErrorReason.Type

/**
 * A plugin that cannot be loaded. `plugin` is the specifier from config (the plugin's name for
 * in-process plugins); `message` names it and says what is wrong, with no stack.
 */
export class PluginLoadError extends Schema.TaggedError<PluginLoadError>()("PluginLoadError", {
  plugin: Schema.String,
  reason: PluginLoadErrorReason,
  message: Schema.String
}) {}

/** A tool and where it comes from. */
export interface RegisteredTool {
  readonly tool: Tool.Any
  readonly plugin: { readonly name: string; readonly version: string }
  /**
   * The services the plugin's `layer` built, which the executor provides to the tool's handler.
   * Typed `never`: what a loaded plugin provides is known only at run time.
   */
  readonly context: Context.Context<never>
}

/** The loaded tools, in the order of the plugins and of each plugin's `tools`. */
export class ToolRegistry extends Context.Service<
  ToolRegistry,
  {
    readonly tools: ReadonlyArray<RegisteredTool>
    readonly get: (name: string) => Option.Option<RegisteredTool>
  }
>()("@polyagent/tools/ToolRegistry") {}

/** Where a plugin was loaded from, for messages. */
interface Source {
  readonly specifier: string
  readonly plugin: unknown
}

const loadError = (plugin: string, reason: PluginLoadErrorReason, problem: string) =>
  new PluginLoadError({ plugin, reason, message: `plugin "${plugin}" ${problem}` })

/**
 * Loads the plugins named by `specifiers`, in order: package names are resolved from `cwd` as
 * Node would resolve an `import` there; paths (absolute or `./…`) are relative to `cwd`, and a
 * directory means its package.json's `exports` or `main`. Plugin layers live as long as the
 * scope. An installed plugin must ship JavaScript: Node does not strip types under `node_modules`.
 */
export const load = Effect.fn("ToolRegistry.load")(function* (
  specifiers: ReadonlyArray<string>,
  options: { readonly cwd: string }
): Effect.fn.Return<ToolRegistry["Service"], PluginLoadError, Scope.Scope> {
  const sources: Array<Source> = []
  for (const specifier of specifiers) {
    sources.push({ specifier, plugin: yield* importPlugin(specifier, options.cwd) })
  }
  return yield* fromSources(sources)
})

/**
 * A registry of plugins already in memory (tests, built-in tools): validated and built like
 * loaded ones, with each plugin's name standing for its specifier in errors.
 */
export const fromPlugins = (
  plugins: ReadonlyArray<ToolPlugin.ToolPlugin>
): Effect.Effect<ToolRegistry["Service"], PluginLoadError, Scope.Scope> =>
  fromSources(plugins.map((plugin) => ({ specifier: plugin.name, plugin })))

/** The registry of {@link load} as a layer: plugin layers are released with it. */
export const layer = (
  specifiers: ReadonlyArray<string>,
  options: { readonly cwd: string }
): Layer.Layer<ToolRegistry, PluginLoadError> => Layer.effect(ToolRegistry, load(specifiers, options))

/** The registry of {@link fromPlugins} as a layer. */
export const layerPlugins = (
  plugins: ReadonlyArray<ToolPlugin.ToolPlugin>
): Layer.Layer<ToolRegistry, PluginLoadError> => Layer.effect(ToolRegistry, fromPlugins(plugins))

const importPlugin = Effect.fnUntraced(function* (specifier: string, cwd: string) {
  const entry = yield* resolvePluginEntry(specifier, cwd).pipe(
    Effect.mapError((notFound) => loadError(specifier, "not_found", notFound.message))
  )
  const module: unknown = yield* Effect.tryPromise({
    try: () => import(pathToFileURL(entry).href),
    catch: (thrown) =>
      loadError(
        specifier,
        "import_failed",
        Predicate.hasProperty(thrown, "code") && thrown.code === "ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING"
          ? `ships TypeScript under node_modules (${entry}), which Node does not run: publish compiled JavaScript`
          : `failed to import ${entry}: ${messageOf(thrown)}`
      )
  })
  if (!Predicate.hasProperty(module, "default") || module.default === undefined) {
    return yield* loadError(
      specifier,
      "not_a_plugin",
      "has no default export: a plugin's module must `export default ToolPlugin.make({ … })`"
    )
  }
  // A plugin compiled to CommonJS by TypeScript arrives as `{ default: plugin }` under `default`.
  const plugin = module.default
  return Predicate.hasProperty(plugin, "default") && ToolPlugin.isToolPlugin(plugin.default) ? plugin.default : plugin
})

// Plugins come from untrusted modules: check the shape, not just the brand.
const validate = (source: Source): Effect.Effect<ToolPlugin.ToolPlugin, PluginLoadError> => {
  const { plugin, specifier } = source
  if (
    !ToolPlugin.isToolPlugin(plugin) ||
    !Predicate.isString(plugin.name) ||
    !Predicate.isString(plugin.version) ||
    !Array.isArray(plugin.tools) ||
    (plugin.layer !== undefined && !Layer.isLayer(plugin.layer))
  ) {
    return Effect.fail(
      loadError(
        specifier,
        "not_a_plugin",
        "is not a PolyAgent plugin: its default export must be made with ToolPlugin.make from @polyagent/tools"
      )
    )
  }
  for (const [index, tool] of plugin.tools.entries()) {
    if (!Tool.isTool(tool) || !Schema.isSchema(tool.parameters) || !Schema.isSchema(tool.success)) {
      return Effect.fail(
        loadError(specifier, "invalid_tool", `has an invalid tool at tools[${index}]: make tools with Tool.make`)
      )
    }
    if (!Predicate.isString(tool.name) || !Tool.namePattern.test(tool.name)) {
      return Effect.fail(
        loadError(
          specifier,
          "invalid_tool",
          `has a tool with an invalid name ${JSON.stringify(tool.name)}: use 1 to 64 letters, digits, "_" or "-"`
        )
      )
    }
  }
  return Effect.succeed(plugin)
}

const fromSources = Effect.fnUntraced(function* (sources: ReadonlyArray<Source>) {
  const plugins: Array<{ readonly specifier: string; readonly plugin: ToolPlugin.ToolPlugin }> = []
  const specifierOf = new Map<string, string>() // plugin name → its specifier
  const ownerOf = new Map<string, string>() // tool name → its plugin's name
  for (const source of sources) {
    const plugin = yield* validate(source)
    const loadedAs = specifierOf.get(plugin.name)
    if (loadedAs !== undefined) {
      return yield* loadError(
        source.specifier,
        "duplicate_plugin",
        `is plugin "${plugin.name}" again, already loaded as "${loadedAs}": list each plugin once`
      )
    }
    specifierOf.set(plugin.name, source.specifier)
    for (const tool of plugin.tools) {
      const owner = ownerOf.get(tool.name)
      if (owner !== undefined) {
        return yield* loadError(
          source.specifier,
          "duplicate_tool",
          owner === plugin.name
            ? `defines tool "${tool.name}" twice`
            : `cannot be loaded: tool "${tool.name}" of plugin "${plugin.name}" is already defined by plugin "${owner}"`
        )
      }
      ownerOf.set(tool.name, plugin.name)
    }
    plugins.push({ specifier: source.specifier, plugin })
  }
  // Layers are built only once every plugin is valid, in config order, in the caller's scope.
  const tools: Array<RegisteredTool> = []
  for (const { specifier, plugin } of plugins) {
    const context = yield* buildLayer(specifier, plugin)
    const info = { name: plugin.name, version: plugin.version }
    for (const tool of plugin.tools) tools.push({ tool, plugin: info, context })
    yield* Effect.logDebug("loaded tool plugin").pipe(
      Effect.annotateLogs({ plugin: plugin.name, version: plugin.version, tools: plugin.tools.map((t) => t.name) })
    )
  }
  const byName = new Map(tools.map((entry) => [entry.tool.name, entry]))
  return ToolRegistry.of({ tools, get: (name) => Option.fromUndefinedOr(byName.get(name)) })
})

const buildLayer = (
  specifier: string,
  plugin: ToolPlugin.ToolPlugin
): Effect.Effect<Context.Context<never>, PluginLoadError, Scope.Scope> =>
  Layer.build(plugin.layer ?? Layer.empty).pipe(
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause)
        : Effect.fail(
            loadError(specifier, "layer_failed", `failed to start its layer: ${messageOf(Cause.squash(cause))}`)
          )
    )
  )
