/**
 * The OpenAI Chat Completions wire format, so that the official `openai` SDK pointed at
 * `http://host:port/v1` works unchanged: the request and response schemas, and pure
 * conversions between them and effect/ai's prompt and response parts. Stateless: the
 * client sends the whole conversation every time.
 */
import * as Result from "effect/Result"
import { ModelRouter } from "@polyagent/runtime"
import * as Schema from "effect/Schema"
import * as Tool from "effect/ai/Tool"
import { Usage as RuntimeUsage } from "@polyagent/runtime"
const Text = Schema.String
const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Text })
const ImagePart = Schema.Struct({
  type: Schema.Literal("image_url"),
  image_url: Schema.Struct({ url: Schema.String, detail: Schema.optional(Schema.String) })
})
const TextContent = Schema.Union([Text, Schema.Array(TextPart)])
/** A tool call as the assistant made it. */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
/** One message of the conversation, in OpenAI's shape. */
export const Message = Schema.Union([
  Schema.Struct({ role: Schema.Literals(["system", "developer"]), content: TextContent, name: Schema.optional(Text) }),
  Schema.Struct({
    role: Schema.Literal("user"),
    content: Schema.Union([Text, Schema.Array(Schema.Union([TextPart, ImagePart]))]),
    name: Schema.optional(Text)
  }),
  Schema.Struct({
    role: Schema.Literal("assistant"),
    content: Schema.optional(Schema.NullOr(TextContent)),
    tool_calls: Schema.optional(Schema.Array(ToolCall)),
    name: Schema.optional(Text)
  }),
  Schema.Struct({ role: Schema.Literal("tool"), content: TextContent, tool_call_id: Schema.String })
])
/** A function the model may call. */
export const FunctionTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/)),
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Record(Schema.String, Schema.Unknown)),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
})
/** The request body of `POST /v1/chat/completions` (fields OpenAI knows and we do not use are ignored). */
export const Request = Schema.Struct({
  model: Schema.String.check(Schema.isNonEmpty()),
  messages: Schema.Array(Message).check(Schema.isMinLength(1)),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
  tools: Schema.optional(Schema.Array(FunctionTool)),
  tool_choice: Schema.optional(
    Schema.Union([
      Schema.Literals(["none", "auto", "required"]),
      Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
    ])
  ),
  temperature: Schema.optional(Schema.NullOr(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 })))),
  top_p: Schema.optional(Schema.NullOr(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Int.check(Schema.isGreaterThan(0)))),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Int.check(Schema.isGreaterThan(0)))),
  stop: Schema.optional(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(Schema.String)]))),
  n: Schema.optional(Schema.NullOr(Schema.Literal(1))),
  user: Schema.optional(Schema.String)
})
/** `model: "agent:<id>"` runs an agent. */
export const agentPrefix = "agent:"
const decodeRequest = Schema.decodeUnknownResult(Request)
/** The request in a body's `text`, or why there is none (a message for a 400). */
export const parseRequest = (text) => {
  const json = Result.try(() => JSON.parse(text))
  if (Result.isFailure(json)) return Result.fail("the request body is not valid JSON")
  const request = decodeRequest(json.success)
  return Result.isSuccess(request)
    ? // The schema accepted it, so it is an object.
      Result.succeed({ body: json.success, request: request.success })
    : Result.fail(`invalid body: ${request.failure.message}`)
}
const Usage = Schema.Struct({
  prompt_tokens: Schema.Int,
  completion_tokens: Schema.Int,
  total_tokens: Schema.Int,
  prompt_tokens_details: Schema.optionalKey(RuntimeUsage.PromptTokensDetails),
  completion_tokens_details: Schema.optionalKey(RuntimeUsage.CompletionTokensDetails)
})
/** The answer of a non-streamed call. */
export const Completion = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion"),
  created: Schema.Int,
  model: Schema.String,
  choices: Schema.Array(
    Schema.Struct({
      index: Schema.Int,
      message: Schema.Struct({
        role: Schema.Literal("assistant"),
        content: Schema.NullOr(Schema.String),
        refusal: Schema.Null,
        tool_calls: Schema.optional(Schema.Array(ToolCall))
      }),
      finish_reason: Schema.String,
      logprobs: Schema.Null
    })
  ),
  usage: Usage
})
/** OpenAI's `finish_reason` for effect/ai's. */
export const finishReason = (reason) => {
  switch (reason) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool-calls":
      return "tool_calls"
    case "content-filter":
      return "content_filter"
    default:
      return "stop"
  }
}
const textOf = (content) => (typeof content === "string" ? content : content.map((part) => part.text).join(""))
/** `data:` URLs carry the bytes; other URLs are passed on for the provider to fetch. */
const imagePart = (url) => {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  return match === null
    ? { type: "file", mediaType: "image/*", data: url }
    : { type: "file", mediaType: match[1] ?? "image/*", data: match[2] ?? "" }
}
/** The conversation as effect/ai prompt messages; a tool result takes its tool's name from the call. */
export const toPrompt = (messages) => {
  const toolNames = new Map()
  return messages.map((message) => {
    switch (message.role) {
      case "system":
      case "developer":
        return { role: "system", content: textOf(message.content) }
      case "user":
        return {
          role: "user",
          content:
            typeof message.content === "string"
              ? message.content
              : message.content.map((part) =>
                  part.type === "text" ? { type: "text", text: part.text } : imagePart(part.image_url.url)
                )
        }
      case "assistant": {
        const text = message.content === undefined || message.content === null ? "" : textOf(message.content)
        const calls = (message.tool_calls ?? []).map((call) => {
          toolNames.set(call.id, call.function.name)
          return {
            type: "tool-call",
            id: call.id,
            name: call.function.name,
            params: parseArguments(call.function.arguments)
          }
        })
        return { role: "assistant", content: [...(text === "" ? [] : [{ type: "text", text }]), ...calls] }
      }
      case "tool":
        return {
          role: "tool",
          content: [
            {
              type: "tool-result",
              id: message.tool_call_id,
              name: toolNames.get(message.tool_call_id) ?? "unknown",
              isFailure: false,
              result: textOf(message.content)
            }
          ]
        }
    }
  })
}
/** Tool-call arguments are JSON text; text that is not JSON is passed on as it is. */
export const parseArguments = (text) => {
  try {
    return text.length === 0 ? {} : JSON.parse(text)
  } catch {
    return text
  }
}
const clientTool = (tool) =>
  Tool.dynamic(tool.function.name, {
    ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
    parameters: tool.function.parameters ?? { type: "object", properties: {} }
  })
/** The client's functions as effect/ai tools. */
export const toTools = (tools) => (tools ?? []).map(clientTool)
/** The client's `tool_choice` in effect/ai's terms. */
export const toToolChoice = (choice) =>
  choice === undefined ? "auto" : typeof choice === "string" ? choice : { tool: choice.function.name }
/** Usage in OpenAI's shape from effect/ai's. */
export const usageOf = (usage) => RuntimeUsage.fromResponse(usage)
/** A chunk of a streamed answer, as its `data:` JSON. */
export const chunk = (header, delta, finishReason = null) =>
  JSON.stringify({
    ...header,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }]
  })
/** The last chunk of a stream whose client asked for usage (`stream_options.include_usage`). */
export const usageChunk = (header, usage) =>
  JSON.stringify({ ...header, object: "chat.completion.chunk", choices: [], usage })
/** A whole completion. */
export const completion = (header, text, toolCalls, finishReason, usage) => ({
  ...header,
  object: "chat.completion",
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: text === "" && toolCalls.length > 0 ? null : text,
        refusal: null,
        ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls })
      },
      finish_reason: finishReason,
      logprobs: null
    }
  ],
  usage: {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.prompt_tokens + usage.completion_tokens
  }
})
/** The end of a stream. */
export const done = "[DONE]"
const decoder = new TextDecoder()
/**
 * The answer's text in the SSE bytes of a streamed completion (`data:` lines of chunks), for a
 * stream that broke off: an unfinished last line is left out.
 */
export const streamText = (chunks) => {
  let text = ""
  const lines = chunks
    .map((bytes) => decoder.decode(bytes, { stream: true }))
    .join("")
    .split("\n")
  for (const line of lines.slice(0, -1)) {
    if (!line.startsWith("data:")) continue
    const parsed = Result.try(() => JSON.parse(line.slice(5)))
    if (Result.isFailure(parsed)) continue
    const read = decodeStreamChunk(parsed.success)
    if (Result.isFailure(read)) continue
    for (const choice of read.success.choices ?? []) text += choice.delta?.content ?? ""
  }
  return text
}
const decodeStreamChunk = Schema.decodeUnknownResult(
  Schema.Struct({
    choices: Schema.optional(
      Schema.Array(
        Schema.Struct({
          delta: Schema.optional(Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) }))
        })
      )
    )
  })
)
/** The messages that follow a conversation whose answer broke off after `partial`, to continue it. */
export const continuation = (partial) =>
  partial === ""
    ? []
    : [
        { role: "assistant", content: partial },
        { role: "user", content: ModelRouter.continuationInstruction }
      ]
//# sourceMappingURL=ChatCompletions.js.map
