/**
 * effect/ai's tools and tool choice as the Messages API's `tools` and `tool_choice`: each tool the
 * application defines becomes a client tool whose `input_schema` is its parameters' JSON Schema
 * (and `strict` when the tool is annotated with `Tool.Strict`).
 * Anthropic's server tools (web search, code execution) are not offered through this adapter. Pure.
 */
import type { Tool as AnthropicTool, ToolChoice } from "@anthropic-ai/sdk/resources/messages"
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as Tool from "effect/ai/Tool"

/** The tool part of a Messages API request; both absent when the call offers no tools. */
export interface Converted {
  readonly tools: Array<AnthropicTool> | undefined
  readonly toolChoice: ToolChoice | undefined
}

/**
 * Converts the tools offered to the model and how it may use them.
 *
 * Tool choice: `auto` → `auto`, `required` → `any`, `none` → `none`, `{ tool }` → that tool,
 * `{ oneOf, mode }` → `any` when `mode` is `required`, `auto` otherwise (`LanguageModel` has already
 * narrowed the tools to `oneOf`). With no tools, neither field is sent.
 *
 * Fails with `ToolConfigurationError` for a provider-defined tool (one the provider runs itself),
 * and with `UnsupportedSchemaError` for parameters that have no JSON Schema form.
 */
export const convertTools = (
  tools: ReadonlyArray<Tool.Any>,
  toolChoice: LanguageModel.ToolChoice<string>
): Result.Result<Converted, AiError.AiErrorReason> =>
  Result.gen(function* () {
    if (tools.length === 0) return { tools: undefined, toolChoice: undefined }
    const converted: Array<AnthropicTool> = []
    for (const tool of tools) converted.push(yield* convertTool(tool))
    return { tools: converted, toolChoice: convertToolChoice(toolChoice) }
  })

/** The `tool_choice` for effect/ai's tool choice; see {@link convertTools}. */
export const convertToolChoice = (toolChoice: LanguageModel.ToolChoice<string>): ToolChoice => {
  if (toolChoice === "auto") return { type: "auto" }
  if (toolChoice === "required") return { type: "any" }
  if (toolChoice === "none") return { type: "none" }
  if ("tool" in toolChoice) return { type: "tool", name: toolChoice.tool }
  return toolChoice.mode === "required" ? { type: "any" } : { type: "auto" }
}

const convertTool = (tool: Tool.Any): Result.Result<AnthropicTool, AiError.AiErrorReason> => {
  if (Tool.isProviderDefined(tool)) {
    return Result.fail(
      new AiError.ToolConfigurationError({
        toolName: tool.name,
        description: `provider-defined tools such as ${tool.id} are not supported by the Anthropic adapter`
      })
    )
  }
  const description = Tool.getDescription(tool)
  const strict = Tool.getStrictMode(tool)
  // Deriving the JSON Schema throws for a parameter schema that has no JSON Schema form.
  return Result.map(
    Result.try({
      try: () => Tool.getJsonSchema(tool),
      catch: () =>
        new AiError.UnsupportedSchemaError({ description: `the parameters of ${tool.name} have no JSON Schema form` })
    }),
    (schema): AnthropicTool => ({
      name: tool.name,
      ...(description === undefined ? {} : { description }),
      input_schema: { ...schema, type: "object" },
      ...(strict === undefined ? {} : { strict })
    })
  )
}
