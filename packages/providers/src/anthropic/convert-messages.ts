/**
 * effect/ai's `Prompt` as the Messages API wants it: system messages lifted into the top-level
 * `system` field, user and assistant turns as content blocks, tool calls as `tool_use` blocks and
 * tool results as `tool_result` blocks in a user turn, with consecutive turns of one role merged
 * (the API expects user and assistant to alternate). Pure; no request is made here.
 */
import type {
  ContentBlockParam,
  DocumentBlockParam,
  ImageBlockParam,
  MessageParam,
  TextBlockParam,
  ToolResultBlockParam
} from "@anthropic-ai/sdk/resources/messages"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as Prompt from "effect/ai/Prompt"
import * as Base64 from "effect/encoding/Base64"

/** The conversation part of a Messages API request. */
export interface Converted {
  /** The system messages in order, one text block each; `undefined` when there are none. */
  readonly system: Array<TextBlockParam> | undefined
  readonly messages: Array<MessageParam>
}

/**
 * Converts a prompt into `system` and `messages`.
 *
 * - every system message becomes one block of the top-level `system`, wherever it stood;
 * - tool messages become user turns of `tool_result` blocks, placed before any other content of
 *   the merged user turn, as the API requires;
 * - empty text, provider-executed tool calls and results, and reasoning without the signature
 *   Anthropic needs to accept it back are dropped; a turn left empty is dropped;
 * - reasoning carrying `options.anthropic.signature` (or `redactedData`) goes back as a `thinking`
 *   (or `redacted_thinking`) block, which is how `stream.ts` labels the reasoning it receives.
 *
 * Fails with `InvalidUserInputError` on a file the API cannot take (only images, PDF and plain
 * text are accepted).
 */
export const convertMessages = (prompt: Prompt.Prompt): Result.Result<Converted, AiError.AiErrorReason> =>
  Result.gen(function* () {
    const system: Array<TextBlockParam> = []
    const turns: Array<Turn> = []
    for (const message of prompt.content) {
      switch (message.role) {
        case "system": {
          if (message.content.length > 0) system.push({ type: "text", text: message.content })
          break
        }
        case "user": {
          const blocks: Array<ContentBlockParam> = []
          for (const part of message.content) {
            const block = part.type === "text" ? textBlock(part.text) : yield* fileBlock(part)
            if (block !== undefined) blocks.push(block)
          }
          pushTurn(turns, "user", blocks)
          break
        }
        case "assistant": {
          pushTurn(turns, "assistant", message.content.flatMap(assistantBlock))
          break
        }
        case "tool": {
          const blocks: Array<ContentBlockParam> = []
          for (const part of message.content) {
            if (part.type === "tool-result" && !part.providerExecuted) blocks.push(yield* toolResultBlock(part))
          }
          pushTurn(turns, "user", blocks)
          break
        }
      }
    }
    return {
      system: system.length > 0 ? system : undefined,
      messages: turns.map((turn): MessageParam => ({ role: turn.role, content: orderUserContent(turn) }))
    }
  })

// ---------------------------------------------------------------------------------------------
// Turns

interface Turn {
  readonly role: "user" | "assistant"
  readonly content: Array<ContentBlockParam>
}

const pushTurn = (turns: Array<Turn>, role: Turn["role"], blocks: ReadonlyArray<ContentBlockParam>): void => {
  if (blocks.length === 0) return
  const last = turns.at(-1)
  if (last !== undefined && last.role === role) last.content.push(...blocks)
  else turns.push({ role, content: [...blocks] })
}

// In a user turn, tool results must come first; the relative order of everything else is kept.
const orderUserContent = (turn: Turn): Array<ContentBlockParam> =>
  turn.role === "assistant"
    ? turn.content
    : [
        ...turn.content.filter((block) => block.type === "tool_result"),
        ...turn.content.filter((block) => block.type !== "tool_result")
      ]

// ---------------------------------------------------------------------------------------------
// Blocks

// The API rejects empty text blocks.
const textBlock = (text: string): TextBlockParam | undefined => (text.length > 0 ? { type: "text", text } : undefined)

const assistantBlock = (part: Prompt.AssistantMessagePart): Array<ContentBlockParam> => {
  switch (part.type) {
    case "text":
      return part.text.length > 0 ? [{ type: "text", text: part.text }] : []
    case "reasoning": {
      const anthropic = anthropicOptions(part.options)
      if (Predicate.isString(anthropic?.["signature"])) {
        return [{ type: "thinking", thinking: part.text, signature: anthropic["signature"] }]
      }
      if (Predicate.isString(anthropic?.["redactedData"])) {
        return [{ type: "redacted_thinking", data: anthropic["redactedData"] }]
      }
      return []
    }
    case "tool-call":
      return part.providerExecuted ? [] : [{ type: "tool_use", id: part.id, name: part.name, input: part.params }]
    default:
      return []
  }
}

const toolResultBlock = (part: Prompt.ToolResultPart): Result.Result<ToolResultBlockParam, AiError.AiErrorReason> =>
  Result.gen(function* () {
    const base = { type: "tool_result", tool_use_id: part.id, ...(part.isFailure ? { is_error: true } : {}) } as const
    if (part.modelOutput === undefined) return { ...base, content: resultText(part.result) }
    const content: Array<TextBlockParam | ImageBlockParam | DocumentBlockParam> = []
    for (const output of part.modelOutput) {
      const block = output.type === "text" ? textBlock(output.text) : yield* fileBlock(output)
      if (block !== undefined) content.push(block)
    }
    return { ...base, content }
  })

// A string result is sent as it is, anything else as its JSON.
const resultText = (result: unknown): string =>
  Predicate.isString(result) ? result : (JSON.stringify(result) ?? String(result))

const imageMediaTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"] as const
type ImageMediaType = (typeof imageMediaTypes)[number]
const isImageMediaType = (mediaType: string): mediaType is ImageMediaType =>
  imageMediaTypes.some((known) => known === mediaType)

const fileBlock = (
  part: Prompt.FilePart
): Result.Result<ImageBlockParam | DocumentBlockParam, AiError.AiErrorReason> => {
  const mediaType = part.mediaType.toLowerCase()
  const data = fileData(part.data)
  if (isImageMediaType(mediaType)) {
    return Result.succeed({
      type: "image",
      source:
        data._tag === "url"
          ? { type: "url", url: data.url }
          : { type: "base64", media_type: mediaType, data: data.base64 }
    })
  }
  if (mediaType === "application/pdf") {
    return Result.succeed({
      type: "document",
      ...(part.fileName === undefined ? {} : { title: part.fileName }),
      source:
        data._tag === "url"
          ? { type: "url", url: data.url }
          : { type: "base64", media_type: "application/pdf", data: data.base64 }
    })
  }
  if (mediaType === "text/plain") {
    // The API takes plain text documents as text, so the data is decoded here.
    const text = data._tag === "base64" ? Base64.decodeString(data.base64) : undefined
    if (text === undefined || Result.isFailure(text)) {
      return invalidFile(
        text === undefined
          ? "Anthropic reads a plain text file only from its content, not from a URL"
          : "the plain text file is not valid base64"
      )
    }
    return Result.succeed({
      type: "document",
      ...(part.fileName === undefined ? {} : { title: part.fileName }),
      source: { type: "text", media_type: "text/plain", data: text.success }
    })
  }
  return invalidFile(`Anthropic accepts images (JPEG, PNG, GIF, WebP), PDF and plain text files, not ${part.mediaType}`)
}

const invalidFile = (description: string): Result.Result<never, AiError.AiErrorReason> =>
  Result.fail(new AiError.InvalidUserInputError({ description }))

type FileData = { readonly _tag: "url"; readonly url: string } | { readonly _tag: "base64"; readonly base64: string }

// A string is base64 data, optionally as a `data:` URL; the prefix is not part of the data.
const fileData = (data: Prompt.FilePart["data"]): FileData => {
  if (data instanceof URL) return { _tag: "url", url: data.href }
  if (data instanceof Uint8Array) return { _tag: "base64", base64: Base64.encode(data) }
  const comma = data.startsWith("data:") ? data.indexOf(",") : -1
  return { _tag: "base64", base64: comma >= 0 ? data.slice(comma + 1) : data }
}

const anthropicOptions = (options: Prompt.ProviderOptions): Readonly<Record<string, unknown>> | undefined => {
  const value = options["anthropic"]
  return Predicate.isObject(value) ? value : undefined
}
