/**
 * The Messages API's server-sent events as effect/ai's stream parts, as a pure state machine:
 * `step` takes the state and one event (already JSON-parsed by the SDK, which also drops `ping`s
 * and throws streamed `error` events) and returns the next state and the parts to emit. Tool input
 * arrives as `input_json_delta` fragments that are forwarded as `tool-params-delta` and joined into
 * the `tool-call`'s params when the block stops, for any number of `tool_use` blocks. The stream is
 * complete only at `message_stop`: input that ends before it is a cut connection, not an answer.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as AiError from "effect/ai/AiError"
import type * as Response from "effect/ai/Response"
import {
  type Block,
  decode,
  decodeBlock,
  finishPart,
  mergeUsage,
  reasoningMetadata,
  Usage
} from "./convert-response.ts"
import { type RequestInfo } from "./map-error.ts"

// ---------------------------------------------------------------------------------------------
// Events

const EventType = Schema.Struct({ type: Schema.String })

const MessageStart = Schema.Struct({
  type: Schema.Literal("message_start"),
  message: Schema.Struct({ id: Schema.String, model: Schema.String, usage: Schema.optional(Usage) })
})

const ContentBlockStart = Schema.Struct({
  type: Schema.Literal("content_block_start"),
  index: Schema.Int,
  content_block: Schema.Unknown
})

const ContentBlockDelta = Schema.Struct({
  type: Schema.Literal("content_block_delta"),
  index: Schema.Int,
  delta: Schema.Unknown
})

const ContentBlockStop = Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Schema.Int })

const MessageDelta = Schema.Struct({
  type: Schema.Literal("message_delta"),
  delta: Schema.Struct({
    stop_reason: Schema.optional(Schema.NullOr(Schema.String)),
    stop_sequence: Schema.optional(Schema.NullOr(Schema.String))
  }),
  usage: Schema.optional(Usage)
})

const Delta = Schema.Union([
  Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("input_json_delta"), partial_json: Schema.String }),
  Schema.Struct({ type: Schema.Literal("thinking_delta"), thinking: Schema.String }),
  Schema.Struct({ type: Schema.Literal("signature_delta"), signature: Schema.String })
])

const JsonText = Schema.fromJsonString(Schema.Unknown)

const knownDeltas: ReadonlyArray<string> = ["text_delta", "input_json_delta", "thinking_delta", "signature_delta"]

// ---------------------------------------------------------------------------------------------
// State

type OpenBlock =
  | { readonly kind: "text"; readonly id: string }
  | {
      readonly kind: "tool"
      readonly id: string
      readonly name: string
      readonly json: string
      readonly input: unknown
    }
  | { readonly kind: "reasoning"; readonly id: string; readonly metadata: ReturnType<typeof reasoningMetadata> }
  | { readonly kind: "skipped" }

/** What the decoder has seen so far of one streamed answer. */
export interface State {
  readonly timestamp: string
  readonly request: RequestInfo
  /** Content blocks started and not yet stopped, by `index`. */
  readonly blocks: ReadonlyMap<number, OpenBlock>
  readonly usage: Usage
  readonly stopReason: string | null | undefined
  readonly stopSequence: string | null | undefined
  /** `message_stop` was seen: the answer is complete and later events are ignored. */
  readonly stopped: boolean
}

/** One input of {@link step}: an event, or the end of the event stream. */
export type Input = { readonly _tag: "Event"; readonly event: unknown } | { readonly _tag: "End" }

/** The state before the first event; `timestamp` goes into the `response-metadata` part. */
export const initial = (options: { readonly timestamp: string; readonly request: RequestInfo }): State => ({
  timestamp: options.timestamp,
  request: options.request,
  blocks: new Map(),
  usage: {},
  stopReason: undefined,
  stopSequence: undefined,
  stopped: false
})

type Step = Result.Result<readonly [State, ReadonlyArray<Response.StreamPartEncoded>], AiError.AiErrorReason>

/**
 * Advances the decoder by one input. Emits:
 *
 * - `message_start` → `response-metadata` (message id, model, timestamp);
 * - a `text` block → `text-start`, `text-delta` per `text_delta`, `text-end`;
 * - a `tool_use` block → `tool-params-start`, `tool-params-delta` per non-empty `input_json_delta`,
 *   then `tool-params-end` and `tool-call` with the joined JSON parsed as params;
 * - a `thinking` block → `reasoning-start`, `reasoning-delta`s, `reasoning-end` carrying the
 *   signature in `metadata.anthropic`;
 * - `message_delta` → nothing (stop reason and usage are kept); `message_stop` → `finish`.
 *
 * Fails with `InvalidResponseError` on a malformed event, an event for a block that is not open,
 * or tool input that is not JSON; with a `NetworkError` when the input ends before
 * `message_stop`. Event and block types it does not know are skipped, as Anthropic asks.
 */
export const step = (state: State, input: Input): Step => {
  if (input._tag === "End") {
    return state.stopped
      ? Result.succeed([state, []])
      : Result.fail(
          new AiError.NetworkError({
            reason: "TransportError",
            description: "the answer ended before message_stop",
            method: state.request.method,
            url: state.request.url
          })
        )
  }
  if (state.stopped) return Result.succeed([state, []])
  return Result.gen(function* () {
    const { type } = yield* decode(EventType, input.event, "an event without a type")
    switch (type) {
      case "message_start": {
        const { message } = yield* decode(MessageStart, input.event, "a malformed message_start")
        const metadata: Response.StreamPartEncoded = {
          type: "response-metadata",
          id: message.id,
          modelId: message.model,
          timestamp: state.timestamp
        }
        return [{ ...state, usage: mergeUsage(state.usage, message.usage ?? {}) }, [metadata]] as const
      }
      case "content_block_start": {
        const event = yield* decode(ContentBlockStart, input.event, "a malformed content_block_start")
        const block = yield* decodeBlock(event.content_block)
        const [open, parts] = startBlock(event.index, block)
        return [withBlock(state, event.index, open), parts] as const
      }
      case "content_block_delta": {
        const event = yield* decode(ContentBlockDelta, input.event, "a malformed content_block_delta")
        const open = yield* openBlock(state, event.index)
        return yield* blockDelta(state, event.index, open, event.delta)
      }
      case "content_block_stop": {
        const event = yield* decode(ContentBlockStop, input.event, "a malformed content_block_stop")
        const open = yield* openBlock(state, event.index)
        const parts = yield* stopBlock(open)
        return [withoutBlock(state, event.index), parts] as const
      }
      case "message_delta": {
        const event = yield* decode(MessageDelta, input.event, "a malformed message_delta")
        const next: State = {
          ...state,
          stopReason: event.delta.stop_reason ?? state.stopReason,
          stopSequence: event.delta.stop_sequence ?? state.stopSequence,
          usage: mergeUsage(state.usage, event.usage ?? {})
        }
        return [next, []] as const
      }
      case "message_stop":
        return [{ ...state, stopped: true }, [finishPart(state.stopReason, state.stopSequence, state.usage)]] as const
      default:
        return [state, []] as const
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Blocks

const withBlock = (state: State, index: number, block: OpenBlock): State => ({
  ...state,
  blocks: new Map(state.blocks).set(index, block)
})

const withoutBlock = (state: State, index: number): State => {
  const blocks = new Map(state.blocks)
  blocks.delete(index)
  return { ...state, blocks }
}

const openBlock = (state: State, index: number): Result.Result<OpenBlock, AiError.AiErrorReason> => {
  const block = state.blocks.get(index)
  return block === undefined
    ? Result.fail(
        new AiError.InvalidResponseError({
          description: `Anthropic sent an event for block ${index}, which is not open`
        })
      )
    : Result.succeed(block)
}

const startBlock = (
  index: number,
  block: Block | undefined
): readonly [OpenBlock, ReadonlyArray<Response.StreamPartEncoded>] => {
  switch (block?.type) {
    case "text": {
      const id = `text-${index}`
      const parts: Array<Response.StreamPartEncoded> = [{ type: "text-start", id }]
      if (block.text.length > 0) parts.push({ type: "text-delta", id, delta: block.text })
      return [{ kind: "text", id }, parts]
    }
    case "tool_use":
      return [
        { kind: "tool", id: block.id, name: block.name, json: "", input: block.input },
        [{ type: "tool-params-start", id: block.id, name: block.name }]
      ]
    case "thinking": {
      const id = `reasoning-${index}`
      const parts: Array<Response.StreamPartEncoded> = [{ type: "reasoning-start", id }]
      if (block.thinking.length > 0) parts.push({ type: "reasoning-delta", id, delta: block.thinking })
      return [{ kind: "reasoning", id, metadata: reasoningMetadata(block) }, parts]
    }
    case "redacted_thinking": {
      const id = `reasoning-${index}`
      return [{ kind: "reasoning", id, metadata: reasoningMetadata(block) }, [{ type: "reasoning-start", id }]]
    }
    case undefined:
      return [{ kind: "skipped" }, []]
  }
}

const blockDelta = (state: State, index: number, open: OpenBlock, raw: unknown): Step =>
  Result.gen(function* () {
    if (open.kind === "skipped") return [state, []] as const
    const { type } = yield* decode(EventType, raw, "a delta without a type")
    if (!knownDeltas.includes(type)) return [state, []] as const
    const delta = yield* decode(Delta, raw, `a malformed ${type}`)
    if (open.kind === "text" && delta.type === "text_delta") {
      return [state, [{ type: "text-delta", id: open.id, delta: delta.text }]] as const
    }
    if (open.kind === "tool" && delta.type === "input_json_delta") {
      const next = withBlock(state, index, { ...open, json: open.json + delta.partial_json })
      const parts: Array<Response.StreamPartEncoded> =
        delta.partial_json.length > 0 ? [{ type: "tool-params-delta", id: open.id, delta: delta.partial_json }] : []
      return [next, parts] as const
    }
    if (open.kind === "reasoning" && delta.type === "thinking_delta") {
      return [state, [{ type: "reasoning-delta", id: open.id, delta: delta.thinking }]] as const
    }
    if (open.kind === "reasoning" && delta.type === "signature_delta") {
      const signature = (open.metadata.anthropic.signature ?? "") + delta.signature
      return [withBlock(state, index, { ...open, metadata: { anthropic: { signature } } }), []] as const
    }
    return yield* Result.fail(
      new AiError.InvalidResponseError({ description: `Anthropic sent a ${type} for a ${open.kind} block` })
    )
  })

const stopBlock = (open: OpenBlock): Result.Result<ReadonlyArray<Response.StreamPartEncoded>, AiError.AiErrorReason> =>
  Result.gen(function* () {
    switch (open.kind) {
      case "text":
        return [{ type: "text-end", id: open.id }]
      case "reasoning":
        return [{ type: "reasoning-end", id: open.id, metadata: open.metadata }]
      case "tool": {
        // No fragments means the input came whole with content_block_start (an empty object).
        const params =
          open.json.trim().length === 0
            ? open.input
            : yield* decode(JsonText, open.json, `tool input for ${open.name} that is not JSON`)
        return [
          { type: "tool-params-end", id: open.id },
          { type: "tool-call", id: open.id, name: open.name, params }
        ]
      }
      case "skipped":
        return []
    }
  })
