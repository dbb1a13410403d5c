/**
 * `@polyagent/tools`: the plugin SDK for tool authors (tool definitions, registry,
 * executor). The package exists from the start so the layering of ../shared/DESIGN.md
 * (runtime → tools, plugins → tools only) is checked before any tool lands; its modules
 * arrive with the tool-calling work.
 */
// oxlint-disable-next-line unicorn/require-module-specifiers -- an empty module until the SDK lands
export type {}
