/**
 * The pieces of a turn that uses tools: the effect/ai tools the model is offered (from the
 * loaded plugins' tools an agent names), the conversion of stored tool calls and results back
 * into prompt messages, and the records a turn reports.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as Prompt from "effect/ai/Prompt"
import type * as Response from "effect/ai/Response"
import * as AiTool from "effect/ai/Tool"
import type * as Toolkit from "effect/ai/Toolkit"
import { Tool, ToolExecutor, type ToolRegistry } from "@polyagent/tools"
import type { Message, ToolCallRecord } from "../Message.ts"
import { continuationInstruction } from "./failover.ts"
import * as Usage from "../Usage.ts"

/** A tool offered to the model: its JSON Schema passed on, its runs done by the executor. */
const offered = (tool: Tool.Any) =>
  AiTool.dynamic(tool.name, { description: tool.description, parameters: Tool.jsonSchema(tool) })
type OfferedTool = ReturnType<typeof offered>

/** The memory tool of agents that remember: the session actor runs it, not the executor. */
export const rememberTool = AiTool.dynamic("remember", {
  description: "Remembers a fact about the user for later conversations with this agent",
  parameters: {
    type: "object",
    properties: { fact: { type: "string", description: "One short fact, in the third person" } },
    required: ["fact"]
  }
})

/** The toolkit of the loaded tools in `names` (tools not loaded are left out), plus `builtins`. */
export const toolkitOf = (
  registry: ToolRegistry.ToolRegistry["Service"] | undefined,
  names: ReadonlyArray<string>,
  builtins: ReadonlyArray<OfferedTool> = []
): Toolkit.WithHandler<Record<string, OfferedTool>> | undefined => {
  const tools = [
    ...names.flatMap((name) => {
      const found = registry?.get(name)
      return found?._tag === "Some" ? [offered(found.value.tool)] : []
    }),
    ...builtins
  ]
  if (tools.length === 0) return undefined
  return {
    tools: Object.fromEntries(tools.map((tool) => [tool.name, tool])),
    // Tool-call resolution is off: the session actor runs calls through the executor and journals them.
    handle: () => Effect.die(new Error("tools are run by the session actor's executor"))
  }
}

/** Arguments as the model wrote them, parsed; text that is not JSON is passed on as it is. */
export const parseArguments = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const ErrorContent = Schema.Struct({ error: Schema.Struct({ type: Schema.String, message: Schema.String }) })
const isErrorContent = Schema.is(Schema.fromJsonString(ErrorContent))

/** What a tool message stores: the result's JSON, or `{"error": {type, message}}`. */
export const toolContent = (result: ToolExecutor.ToolResult): string =>
  result.status === "ok" ? result.result : JSON.stringify({ error: result.error })

const decodeStoredError = Schema.decodeUnknownOption(
  Schema.fromJsonString(
    Schema.Struct({ error: Schema.Struct({ type: ToolExecutor.ToolErrorType, message: Schema.String }) })
  )
)

/** The result a stored `tool` message holds, read back as {@link toolContent} wrote it. */
export const storedResult = (message: Message, name: string): ToolExecutor.ToolResult => {
  const id = message.tool_call_id ?? ""
  const failed = decodeStoredError(message.content)
  return failed._tag === "Some"
    ? { id, name, status: "error", error: failed.value.error }
    : { id, name, status: "ok", result: message.content }
}

/**
 * The turn whose user message is `seq`, in `history`: its final answer (the first assistant
 * message after it without tool calls, before the next user message) and its tool results.
 */
export const storedTurn = (
  seq: number,
  history: ReadonlyArray<Message>
): { readonly answer: Message | undefined; readonly results: Array<ToolExecutor.ToolResult> } => {
  const names = new Map<string, string>()
  const results: Array<ToolExecutor.ToolResult> = []
  for (const message of history) {
    if (message.seq <= seq) continue
    if (message.role === "user") break
    if (message.role === "assistant" && message.tool_calls === null) return { answer: message, results }
    for (const call of message.tool_calls ?? []) names.set(call.id, call.name)
    if (message.role === "tool") results.push(storedResult(message, names.get(message.tool_call_id ?? "") ?? "unknown"))
  }
  return { answer: undefined, results }
}

// A stored message never changes, and a conversation is sent again on every turn: the prompt
// message of a message without tool calls is built once, and decoded once (see `promptOf`).
const plainPrompts = new WeakMap<Message, Prompt.MessageEncoded>()

const plainPromptOf = (message: Message, role: "system" | "user" | "assistant"): Prompt.MessageEncoded => {
  const cached = plainPrompts.get(message)
  if (cached !== undefined) return cached
  const built: Prompt.MessageEncoded =
    role === "assistant" ? assistantPrompt(message.content, []) : { role, content: message.content }
  plainPrompts.set(message, built)
  return built
}

const decodedPrompts = new WeakMap<Prompt.MessageEncoded, Prompt.Message>()

/**
 * The prompt as effect/ai's decoded `Prompt`, which a `LanguageModel` takes as it is: encoded
 * messages would be decoded with their Schema on every call. Each message object is decoded once.
 */
export const promptOf = (messages: ReadonlyArray<Prompt.MessageEncoded>): Prompt.Prompt =>
  Prompt.fromMessages(
    messages.map((message) => {
      const cached = decodedPrompts.get(message)
      if (cached !== undefined) return cached
      const [decoded] = Prompt.make([message]).content
      if (decoded !== undefined) decodedPrompts.set(message, decoded)
      // `make` answers one message per message given.
      return decoded ?? Prompt.makeMessage("user", { content: [] })
    })
  )

/** Stored messages as prompt messages, tool calls and their results included. */
export const toPrompt = (history: ReadonlyArray<Message>): Array<Prompt.MessageEncoded> => {
  const names = new Map<string, string>()
  return history.map((message): Prompt.MessageEncoded => {
    switch (message.role) {
      case "system":
      case "user":
        return plainPromptOf(message, message.role)
      case "assistant":
        return message.tool_calls === null
          ? plainPromptOf(message, "assistant")
          : assistantPrompt(message.content, message.tool_calls, names)
      case "tool":
        return {
          role: "tool",
          content: [
            {
              type: "tool-result",
              id: message.tool_call_id ?? "",
              name: names.get(message.tool_call_id ?? "") ?? "unknown",
              isFailure: isErrorContent(message.content),
              result: parseArguments(message.content)
            }
          ]
        }
    }
  })
}

/** An assistant message with its tool calls; remembers the calls' names for their results. */
export const assistantPrompt = (
  text: string,
  calls: ReadonlyArray<ToolCallRecord>,
  names: Map<string, string> = new Map()
): Prompt.AssistantMessageEncoded => ({
  role: "assistant",
  content: [
    ...(text === "" ? [] : [{ type: "text" as const, text }]),
    ...calls.map((call): Prompt.ToolCallPartEncoded => {
      names.set(call.id, call.name)
      return { type: "tool-call", id: call.id, name: call.name, params: parseArguments(call.arguments) }
    })
  ]
})

/** The results of one step as a prompt message. */
export const resultsPrompt = (results: ReadonlyArray<ToolExecutor.ToolResult>): Prompt.ToolMessageEncoded => ({
  role: "tool",
  content: results.map((result) => ({
    type: "tool-result",
    id: result.id,
    name: result.name,
    isFailure: result.status === "error",
    result: parseArguments(toolContent(result))
  }))
})

/** The usage of a model call in our terms. */
export const usageOf: (usage: Response.Usage) => Usage.Usage = Usage.fromResponse

/** What one model call of a turn gave: its text, the tool calls it asks for, its usage. */
export interface Step {
  readonly text: string
  readonly calls: ReadonlyArray<ToolCallRecord>
  readonly usage: Usage.Usage
}

/** Agents' tools may use every permission PolyAgent grants (today: `network`, through SafeHttp). */
export const grant: ReadonlySet<Tool.Permission> = new Set(["network"])

const recordOf = (part: { readonly id: string; readonly name: string; readonly params: unknown }): ToolCallRecord => ({
  id: part.id,
  name: part.name,
  arguments: JSON.stringify(part.params) ?? "{}"
})

const stepOf = (response: {
  readonly text: string
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly params: unknown }>
  readonly usage: Response.Usage
}): Step => ({ text: response.text, calls: response.toolCalls.map(recordOf), usage: usageOf(response.usage) })

export type Offered = ReturnType<typeof toolkitOf>

export const generateStep = (
  languageModel: LanguageModel.LanguageModel,
  prompt: ReadonlyArray<Prompt.MessageEncoded>,
  toolkit: Offered
) =>
  Effect.suspend(() =>
    toolkit === undefined
      ? Effect.map(languageModel.generateText({ prompt: promptOf(prompt) }), stepOf)
      : Effect.map(
          languageModel.generateText({ prompt: promptOf(prompt), toolkit, disableToolCallResolution: true }),
          stepOf
        )
  )

/** A step's answer as stream parts. */
export const streamParts = (
  languageModel: LanguageModel.LanguageModel,
  prompt: ReadonlyArray<Prompt.MessageEncoded>,
  toolkit: Offered
): Stream.Stream<Response.AnyPart, AiError.AiError> =>
  Stream.suspend(() =>
    toolkit === undefined
      ? languageModel.streamText({ prompt: promptOf(prompt) })
      : languageModel.streamText({ prompt: promptOf(prompt), toolkit, disableToolCallResolution: true })
  )

/** The text of an answer's stream parts, and the usage its `finish` part reports. */
export const readParts = (
  parts: ReadonlyArray<Response.AnyPart>
): { readonly text: string; readonly usage: Usage.Usage | undefined } => {
  let text = ""
  let usage: Usage.Usage | undefined
  for (const part of parts) {
    if (part.type === "text-delta") text += part.delta
    else if (part.type === "finish") usage = usageOf(part.usage)
  }
  return { text, usage }
}

/**
 * Asks a model to go on with an answer another model broke off: the text so far as the
 * assistant's, then an instruction to continue it without repeating it.
 */
export const continuation = (
  prompt: ReadonlyArray<Prompt.MessageEncoded>,
  partial: string
): ReadonlyArray<Prompt.MessageEncoded> =>
  partial === ""
    ? prompt
    : [
        ...prompt,
        { role: "assistant", content: [{ type: "text", text: partial }] },
        { role: "user", content: continuationInstruction }
      ]

/**
 * A streamed step, collected: text deltas go out as they come, a failover is told, tool calls
 * are collected. The step's usage is what its calls charged (see ModelRouter), not summed here.
 */
export const collectStep = <E, E2 = never>(
  parts: Stream.Stream<Response.AnyPart | { readonly _tag: "Failover"; readonly from: string; readonly to: string }, E>,
  onDelta: (delta: string) => Effect.Effect<void, E2>,
  onFailover: (from: string, to: string) => Effect.Effect<void>
): Effect.Effect<Step, E | E2> => {
  let text = ""
  const calls: Array<ToolCallRecord> = []
  let usage = Usage.make(0, 0)
  return Effect.map(
    Stream.runForEach(parts, (part): Effect.Effect<void, E2> => {
      if ("_tag" in part) return onFailover(part.from, part.to)
      switch (part.type) {
        case "text-delta":
          text += part.delta
          return onDelta(part.delta)
        case "tool-call":
          calls.push(recordOf(part))
          return Effect.void
        case "finish":
          usage = usageOf(part.usage)
          return Effect.void
        default:
          return Effect.void
      }
    }),
    (): Step => ({ text, calls, usage })
  )
}
