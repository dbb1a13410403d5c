/**
 * A Messages API answer (`type: "message"`) as effect/ai's response parts, and Anthropic's token
 * usage as effect/ai's `Usage`. The body is decoded with Schema rather than trusted to match the
 * SDK's types: a field that is missing or of the wrong type is an `InvalidResponseError`, never a
 * crash. The content block schemas are shared with `stream.ts`. Pure.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as AiError from "effect/ai/AiError"
import type * as Response from "effect/ai/Response"
import { mapFinishReason } from "./map-finish-reason.ts"

// ---------------------------------------------------------------------------------------------
// Usage

const Count = Schema.optional(Schema.NullOr(Schema.Number))

/** `usage` of a message, and of `message_start` / `message_delta` events (fields may be null). */
export const Usage = Schema.Struct({
  input_tokens: Count,
  output_tokens: Count,
  cache_creation_input_tokens: Count,
  cache_read_input_tokens: Count,
  output_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ thinking_tokens: Count })))
})
export type Usage = typeof Usage.Type

/**
 * Anthropic's usage as effect/ai's. Anthropic's `input_tokens` counts only the input that was
 * neither read from nor written to the prompt cache, so the total input is the sum of the three;
 * reasoning is `output_tokens_details.thinking_tokens` and text the rest of the output. A count
 * Anthropic did not report stays `undefined` (unknown), never 0.
 */
export const toUsage = (usage: Usage): typeof Response.Usage.Encoded => {
  const uncached = count(usage.input_tokens)
  const cacheRead = count(usage.cache_read_input_tokens)
  const cacheWrite = count(usage.cache_creation_input_tokens)
  const output = count(usage.output_tokens)
  const reasoning = count(usage.output_tokens_details?.thinking_tokens)
  return {
    inputTokens: {
      uncached,
      total: uncached === undefined ? undefined : uncached + (cacheRead ?? 0) + (cacheWrite ?? 0),
      cacheRead,
      cacheWrite
    },
    outputTokens: {
      total: output,
      text: output === undefined || reasoning === undefined ? undefined : output - reasoning,
      reasoning
    }
  }
}

/** Later usage over earlier: a stream reports input in `message_start` and output in `message_delta`. */
export const mergeUsage = (earlier: Usage, later: Usage): Usage => ({
  input_tokens: later.input_tokens ?? earlier.input_tokens,
  output_tokens: later.output_tokens ?? earlier.output_tokens,
  cache_creation_input_tokens: later.cache_creation_input_tokens ?? earlier.cache_creation_input_tokens,
  cache_read_input_tokens: later.cache_read_input_tokens ?? earlier.cache_read_input_tokens,
  output_tokens_details: later.output_tokens_details ?? earlier.output_tokens_details
})

// Token counts are integers; anything else is treated as not reported.
const count = (value: number | null | undefined): number | undefined =>
  value !== null && value !== undefined && Number.isInteger(value) && value >= 0 ? value : undefined

// ---------------------------------------------------------------------------------------------
// Content blocks

/** The `type` every content block has; decoded first so that unknown block types can be skipped. */
export const BlockType = Schema.Struct({ type: Schema.String })

/** A `text` block. */
export const TextBlock = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })

/** A `tool_use` block: the model calls the tool `name` with `input`. */
export const ToolUseBlock = Schema.Struct({
  type: Schema.Literal("tool_use"),
  id: Schema.String,
  name: Schema.String,
  input: Schema.Unknown
})

/** A `thinking` block; its `signature` must go back with it in later turns. */
export const ThinkingBlock = Schema.Struct({
  type: Schema.Literal("thinking"),
  thinking: Schema.String,
  signature: Schema.optional(Schema.String)
})

/** A `redacted_thinking` block: encrypted reasoning, sent back as it came. */
export const RedactedThinkingBlock = Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String })

/** The content blocks this adapter understands; others (server tool blocks) are skipped. */
export type Block =
  | typeof TextBlock.Type
  | typeof ToolUseBlock.Type
  | typeof ThinkingBlock.Type
  | typeof RedactedThinkingBlock.Type

/** Decodes a content block; `undefined` for a block type this adapter does not use. */
export const decodeBlock = (block: unknown): Result.Result<Block | undefined, AiError.AiErrorReason> =>
  Result.gen(function* () {
    const { type } = yield* decode(BlockType, block, "a content block without a type")
    switch (type) {
      case "text":
        return yield* decode(TextBlock, block, "a malformed text block")
      case "tool_use":
        return yield* decode(ToolUseBlock, block, "a malformed tool_use block")
      case "thinking":
        return yield* decode(ThinkingBlock, block, "a malformed thinking block")
      case "redacted_thinking":
        return yield* decode(RedactedThinkingBlock, block, "a malformed redacted_thinking block")
      default:
        return undefined
    }
  })

/**
 * Decodes `input` with `schema`, or fails with an `InvalidResponseError` described by `what`.
 * The schema's own message is not kept: it quotes the upstream data.
 */
export const decode = <S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  input: unknown,
  what: string
): Result.Result<S["Type"], AiError.AiErrorReason> =>
  Result.mapError(
    Schema.decodeUnknownResult(schema)(input),
    () => new AiError.InvalidResponseError({ description: `Anthropic sent ${what}` })
  )

/** The metadata a reasoning part carries so that `convert-messages.ts` can send it back. */
export const reasoningMetadata = (block: typeof ThinkingBlock.Type | typeof RedactedThinkingBlock.Type) =>
  block.type === "thinking"
    ? { anthropic: block.signature === undefined ? {} : { signature: block.signature } }
    : { anthropic: { redactedData: block.data } }

// ---------------------------------------------------------------------------------------------
// Message

/** The fields of a non-streaming answer that the conversion reads. */
export const Message = Schema.Struct({
  type: Schema.Literal("message"),
  id: Schema.String,
  model: Schema.String,
  content: Schema.Array(Schema.Unknown),
  stop_reason: Schema.optional(Schema.NullOr(Schema.String)),
  stop_sequence: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Usage
})

/**
 * Converts a non-streaming answer: a `response-metadata` part (id, model, `timestamp`), one part per
 * understood content block in order (`text`; `tool-call` with the parsed `input` as params;
 * `reasoning` with the signature in `metadata.anthropic`), and a `finish` part with the mapped
 * stop reason and usage.
 */
export const convertResponse = (
  body: unknown,
  timestamp: string
): Result.Result<Array<Response.PartEncoded>, AiError.AiErrorReason> =>
  Result.gen(function* () {
    const message = yield* decode(Message, body, "an answer that is not a message")
    const parts: Array<Response.PartEncoded> = [
      { type: "response-metadata", id: message.id, modelId: message.model, timestamp }
    ]
    for (const content of message.content) {
      const block = yield* decodeBlock(content)
      if (block === undefined) continue
      switch (block.type) {
        case "text":
          parts.push({ type: "text", text: block.text })
          break
        case "tool_use":
          parts.push({ type: "tool-call", id: block.id, name: block.name, params: block.input })
          break
        case "thinking":
          parts.push({ type: "reasoning", text: block.thinking, metadata: reasoningMetadata(block) })
          break
        case "redacted_thinking":
          parts.push({ type: "reasoning", text: "", metadata: reasoningMetadata(block) })
          break
      }
    }
    parts.push(finishPart(message.stop_reason, message.stop_sequence, message.usage))
    return parts
  })

/** The `finish` part for a stop reason and usage; the raw stop reason is kept in `metadata`. */
export const finishPart = (
  stopReason: string | null | undefined,
  stopSequence: string | null | undefined,
  usage: Usage
): Response.FinishPartEncoded => ({
  type: "finish",
  reason: mapFinishReason(stopReason),
  usage: toUsage(usage),
  metadata: { anthropic: { stopReason: stopReason ?? null, stopSequence: stopSequence ?? null } }
})
