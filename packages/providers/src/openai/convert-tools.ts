/**
 * effect/ai's tools and tool choice as Chat Completions `tools` and `tool_choice`. A tool becomes a
 * function tool whose parameters are the JSON Schema of its parameter Schema; a restriction to some
 * tools (`oneOf`) is sent as the shorter tool list, which every server of the family understands.
 */
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as Tool from "effect/ai/Tool"
import type { ChatCompletionFunctionTool, ChatCompletionToolChoiceOption } from "openai/resources/chat/completions"
import type { Quirks } from "./Config.ts"

/** The `tools` and `tool_choice` of a request; both absent when no tool may be called. */
export interface ToolsParams {
  readonly tools?: Array<ChatCompletionFunctionTool>
  readonly tool_choice?: ChatCompletionToolChoiceOption
}

/**
 * The tools the model may call under `toolChoice`, as function tools. Fails with
 * `ToolConfigurationError` on a provider-defined tool (they belong to other APIs) and on a choice
 * that names a tool not in `tools`.
 *
 * Gotchas: `none` sends no tools, so the model does not see their definitions; with
 * `quirks.toolChoice: "auto"` a forced choice (`required`, a named tool) is only asked for; `strict` is sent only for tools annotated with `Tool.Strict`, whose Schema must then
 * meet OpenAI's strict-mode rules.
 */
export const convertTools = (
  tools: ReadonlyArray<Tool.Any>,
  toolChoice: LanguageModel.ToolChoice<string>,
  quirks: Pick<Quirks, "toolChoice">
): Result.Result<ToolsParams, AiError.ToolConfigurationError> => {
  // `none` is sent as no tools at all: OpenAI rejects a `tool_choice` without `tools`, and servers
  // that only know `auto` have no other way to say it.
  if (tools.length === 0 || toolChoice === "none") return Result.succeed({})
  const allowed = allowedNames(toolChoice)
  const selected = allowed === undefined ? tools : tools.filter((tool) => allowed.includes(tool.name))
  for (const name of allowed ?? []) {
    if (!tools.some((tool) => tool.name === name)) {
      return Result.fail(
        new AiError.ToolConfigurationError({
          toolName: name,
          description: "tool choice names a tool the request does not offer"
        })
      )
    }
  }
  const functions: Array<ChatCompletionFunctionTool> = []
  for (const tool of selected) {
    if (Tool.isProviderDefined(tool)) {
      return Result.fail(
        new AiError.ToolConfigurationError({
          toolName: tool.name,
          description: "provider-defined tools are not available through Chat Completions"
        })
      )
    }
    functions.push(functionTool(tool))
  }
  return Result.succeed({ tools: functions, tool_choice: choiceOption(toolChoice, quirks) })
}

/** One tool as a Chat Completions function tool. */
export const functionTool = (tool: Tool.Any): ChatCompletionFunctionTool => {
  const description = Tool.getDescription(tool)
  const strict = Tool.getStrictMode(tool)
  return {
    type: "function",
    function: {
      name: tool.name,
      parameters: { ...Tool.getJsonSchema(tool) },
      ...(description === undefined ? {} : { description }),
      ...(strict === undefined ? {} : { strict })
    }
  }
}

const allowedNames = (toolChoice: LanguageModel.ToolChoice<string>): ReadonlyArray<string> | undefined => {
  if (typeof toolChoice === "string") return undefined
  return "tool" in toolChoice ? [toolChoice.tool] : toolChoice.oneOf
}

const choiceOption = (
  toolChoice: LanguageModel.ToolChoice<string>,
  quirks: Pick<Quirks, "toolChoice">
): ChatCompletionToolChoiceOption => {
  if (quirks.toolChoice === "auto") return "auto"
  if (typeof toolChoice === "string") return toolChoice
  if ("tool" in toolChoice) return { type: "function", function: { name: toolChoice.tool } }
  return toolChoice.mode ?? "auto"
}
