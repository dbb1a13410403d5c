/**
 * `@polyagent/tools`: the plugin SDK. A tool is a name, a description, Schemas for its
 * parameters and result, the permissions it needs, and an Effect handler; a plugin is an npm
 * package whose default export is `ToolPlugin.make({ name, version, tools, layer? })`.
 */
export * as Tool from "./Tool.ts"
export * as ToolPlugin from "./ToolPlugin.ts"
export * as SafeHttp from "./SafeHttp.ts"
export * as ToolExecutor from "./ToolExecutor.ts"
export * as ToolRegistry from "./ToolRegistry.ts"
