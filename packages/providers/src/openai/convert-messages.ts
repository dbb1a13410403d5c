/**
 * effect/ai's prompt as Chat Completions `messages`. System, user and assistant messages map one to
 * one; an assistant's tool calls become its `tool_calls` (arguments as JSON text) and every tool
 * result becomes a `tool` message of its own, answering its call by id. A user message of text only
 * is sent as one string, the form every server of the family accepts; parts (images, PDFs, audio)
 * only appear when the message has a file.
 */
import * as Formatter from "effect/Formatter"
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import * as Prompt from "effect/ai/Prompt"
import * as Base64 from "effect/encoding/Base64"
import type {
  ChatCompletionAssistantMessageParam,
  ChatCompletionContentPart,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageParam
} from "openai/resources/chat/completions"

/**
 * The Chat Completions messages of `prompt`. Fails with `InvalidUserInputError` on a file the API
 * cannot take (a PDF given by URL, a media type other than images, PDF, WAV and MP3).
 *
 * Gotchas: reasoning parts of earlier assistant turns are not sent back (the API has no field for
 * them), nor are files an assistant produced, tool approvals, or provider-executed tool calls.
 */
export const convertMessages = (
  prompt: Prompt.Prompt
): Result.Result<Array<ChatCompletionMessageParam>, AiError.InvalidUserInputError> => {
  const messages: Array<ChatCompletionMessageParam> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system":
        messages.push({ role: "system", content: message.content })
        break
      case "user": {
        const content = userContent(message.content)
        if (Result.isFailure(content)) return Result.fail(content.failure)
        messages.push({ role: "user", content: content.success })
        break
      }
      case "assistant":
        messages.push(assistantMessage(message.content))
        break
      case "tool":
        for (const part of message.content) {
          if (part.type === "tool-result") {
            messages.push({ role: "tool", tool_call_id: part.id, content: toolResultText(part) })
          }
        }
        break
    }
  }
  return Result.succeed(messages)
}

/** The text a tool result shows the model: its model output, else the result itself (strings as they are). */
export const toolResultText = (part: Prompt.ToolResultPart): string => {
  if (part.modelOutput !== undefined) return Prompt.toolModelOutputToText(part.modelOutput)
  return typeof part.result === "string" ? part.result : Formatter.formatJson(part.result)
}

const userContent = (
  parts: ReadonlyArray<Prompt.UserMessagePart>
): Result.Result<string | Array<ChatCompletionContentPart>, AiError.InvalidUserInputError> => {
  if (parts.every((part) => part.type === "text")) {
    return Result.succeed(parts.map((part) => part.text).join("\n"))
  }
  const content: Array<ChatCompletionContentPart> = []
  for (const part of parts) {
    if (part.type === "text") {
      content.push({ type: "text", text: part.text })
      continue
    }
    const file = filePart(part)
    if (Result.isFailure(file)) return Result.fail(file.failure)
    content.push(file.success)
  }
  return Result.succeed(content)
}

const filePart = (part: Prompt.FilePart): Result.Result<ChatCompletionContentPart, AiError.InvalidUserInputError> => {
  const mediaType = part.mediaType.toLowerCase()
  if (mediaType.startsWith("image/")) {
    const url = part.data instanceof URL ? part.data.href : dataUrl(part.mediaType, part.data)
    return Result.succeed({ type: "image_url", image_url: { url } })
  }
  if (part.data instanceof URL) {
    return Result.fail(unsupported(`a ${part.mediaType} file given by URL (only images may be URLs)`))
  }
  if (mediaType === "application/pdf") {
    return Result.succeed({
      type: "file",
      file: { filename: part.fileName ?? "document.pdf", file_data: dataUrl(part.mediaType, part.data) }
    })
  }
  if (mediaType === "audio/wav" || mediaType === "audio/x-wav") {
    return Result.succeed({ type: "input_audio", input_audio: { data: base64(part.data), format: "wav" } })
  }
  if (mediaType === "audio/mpeg" || mediaType === "audio/mp3") {
    return Result.succeed({ type: "input_audio", input_audio: { data: base64(part.data), format: "mp3" } })
  }
  return Result.fail(unsupported(`media type ${part.mediaType}`))
}

const assistantMessage = (parts: ReadonlyArray<Prompt.AssistantMessagePart>): ChatCompletionAssistantMessageParam => {
  const text: Array<string> = []
  const toolCalls: Array<ChatCompletionMessageFunctionToolCall> = []
  for (const part of parts) {
    if (part.type === "text") text.push(part.text)
    if (part.type === "tool-call" && !part.providerExecuted) {
      toolCalls.push({
        id: part.id,
        type: "function",
        function: { name: part.name, arguments: Formatter.formatJson(part.params ?? {}) }
      })
    }
  }
  // `content` stays a string even beside tool calls: some compatible servers reject `null`.
  return toolCalls.length === 0
    ? { role: "assistant", content: text.join("") }
    : { role: "assistant", content: text.join(""), tool_calls: toolCalls }
}

// File data is base64 text, bytes, or a URL (handled by the callers).
const base64 = (data: string | Uint8Array): string => (typeof data === "string" ? data : Base64.encode(data))

const dataUrl = (mediaType: string, data: string | Uint8Array): string =>
  typeof data === "string" && data.startsWith("data:") ? data : `data:${mediaType};base64,${base64(data)}`

const unsupported = (what: string): AiError.InvalidUserInputError =>
  new AiError.InvalidUserInputError({ description: `Chat Completions cannot take ${what}` })
