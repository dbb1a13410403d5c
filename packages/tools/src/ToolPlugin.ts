/**
 * A tool plugin: an npm package whose default export is `ToolPlugin.make({ name, version,
 * tools, layer? })`. The plugin's `layer` provides what its tools need beyond what PolyAgent
 * gives every tool (`SafeHttp`); a plugin depends on `@polyagent/tools` alone.
 */
import type * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type * as Tool from "./Tool.ts"

const TypeId = "~@polyagent/tools/ToolPlugin"

/** A loaded plugin. */
export interface ToolPlugin {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly version: string
  readonly tools: ReadonlyArray<Tool.Any>
  readonly layer: Layer.Layer<never, never, never> | undefined
}

/**
 * Defines a plugin; the default export of its package. `layer` provides the services its tools
 * need beyond `SafeHttp` (a client, a cache); it must not fail or need anything.
 */
export const make = (options: {
  readonly name: string
  readonly version: string
  readonly tools: ReadonlyArray<Tool.Any>
  readonly layer?: Layer.Layer<never, never, never> | undefined
}): ToolPlugin => ({
  [TypeId]: TypeId,
  name: options.name,
  version: options.version,
  tools: options.tools,
  layer: options.layer
})

/** Whether `u` is a plugin made by {@link make}. */
export const isToolPlugin = (u: unknown): u is ToolPlugin => Predicate.hasProperty(u, TypeId)
