/**
 * The stream decoder: Anthropic's documented event sequences become effect/ai stream parts, tool
 * input is joined exactly across `input_json_delta` fragments for several `tool_use` blocks, and a
 * stream that is cut, malformed or inconsistent fails with the right reason.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type { AiError, Response } from "effect/ai"
import * as AnthropicStream from "../../src/anthropic/stream.ts"

const timestamp = "2026-11-25T12:00:00.000Z"
const request = { method: "POST", url: "http://127.0.0.1/v1/messages" }

// Runs the decoder over `events`, then the end of the stream.
const decode = (
  events: ReadonlyArray<unknown>
): Result.Result<Array<Response.StreamPartEncoded>, AiError.AiErrorReason> => {
  let state = AnthropicStream.initial({ timestamp, request })
  const parts: Array<Response.StreamPartEncoded> = []
  const inputs: Array<AnthropicStream.Input> = [
    ...events.map((event): AnthropicStream.Input => ({ _tag: "Event", event })),
    { _tag: "End" }
  ]
  for (const input of inputs) {
    const result = AnthropicStream.step(state, input)
    if (Result.isFailure(result)) return Result.fail(result.failure)
    state = result.success[0]
    parts.push(...result.success[1])
  }
  return Result.succeed(parts)
}

const partsOf = (events: ReadonlyArray<unknown>): Array<Response.StreamPartEncoded> => {
  const result = decode(events)
  if (Result.isFailure(result)) assert.fail(`expected parts, got ${result.failure._tag}: ${result.failure.message}`)
  return result.success
}

const failureOf = (events: ReadonlyArray<unknown>): AiError.AiErrorReason => {
  const result = decode(events)
  if (Result.isSuccess(result)) assert.fail("expected the stream to fail")
  return result.failure
}

const messageStart = {
  type: "message_start",
  message: {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-5-5",
    content: [],
    stop_reason: null,
    usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 }
  }
}
const ping = { type: "ping" }
const messageDelta = (stopReason: string) => ({
  type: "message_delta",
  delta: { stop_reason: stopReason, stop_sequence: null },
  usage: { output_tokens: 9 }
})
const messageStop = { type: "message_stop" }
const blockStart = (index: number, block: object) => ({ type: "content_block_start", index, content_block: block })
const blockDelta = (index: number, delta: object) => ({ type: "content_block_delta", index, delta })
const blockStop = (index: number) => ({ type: "content_block_stop", index })
const json = (index: number, partial_json: string) => blockDelta(index, { type: "input_json_delta", partial_json })
const toolUse = (id: string, name: string) => ({ type: "tool_use", id, name, input: {} })

describe("stream decoder", () => {
  it("turns a text answer into metadata, text parts and a finish with the usage of both message events", () => {
    const parts = partsOf([
      messageStart,
      blockStart(0, { type: "text", text: "" }),
      ping,
      blockDelta(0, { type: "text_delta", text: "Hello" }),
      blockDelta(0, { type: "text_delta", text: ", world" }),
      blockStop(0),
      messageDelta("end_turn"),
      messageStop
    ])
    assert.deepStrictEqual(parts, [
      { type: "response-metadata", id: "msg_1", modelId: "claude-sonnet-5-5", timestamp },
      { type: "text-start", id: "text-0" },
      { type: "text-delta", id: "text-0", delta: "Hello" },
      { type: "text-delta", id: "text-0", delta: ", world" },
      { type: "text-end", id: "text-0" },
      {
        type: "finish",
        reason: "stop",
        usage: {
          inputTokens: { uncached: 12, total: 132, cacheRead: 100, cacheWrite: 20 },
          outputTokens: { total: 9, text: undefined, reasoning: undefined }
        },
        metadata: { anthropic: { stopReason: "end_turn", stopSequence: null } }
      }
    ])
  })

  it("joins tool input fragments cut anywhere into the exact params of several tool calls", () => {
    const parts = partsOf([
      messageStart,
      blockStart(0, { type: "text", text: "" }),
      blockDelta(0, { type: "text_delta", text: "Checking." }),
      blockStop(0),
      blockStart(1, toolUse("toolu_1", "get_weather")),
      json(1, ""),
      json(1, '{"ci'),
      json(1, 'ty": "Par'),
      json(1, 'is", "days": [1, '),
      json(1, "2]}"),
      blockStop(1),
      blockStart(2, toolUse("toolu_2", "get_time")),
      json(2, '{"zone":'),
      json(2, ' "Europe/Paris\\u00e9"}'),
      blockStop(2),
      messageDelta("tool_use"),
      messageStop
    ])
    const calls = parts.filter((part) => part.type === "tool-call")
    assert.deepStrictEqual(calls, [
      { type: "tool-call", id: "toolu_1", name: "get_weather", params: { city: "Paris", days: [1, 2] } },
      { type: "tool-call", id: "toolu_2", name: "get_time", params: { zone: "Europe/Parisé" } }
    ])
    const deltas = (id: string) =>
      parts.flatMap((part) => (part.type === "tool-params-delta" && part.id === id ? [part.delta] : []))
    assert.strictEqual(deltas("toolu_1").join(""), '{"city": "Paris", "days": [1, 2]}')
    assert.notInclude(deltas("toolu_1"), "", "an empty fragment is not forwarded")
    assert.deepStrictEqual(
      parts.filter((part) => part.type.startsWith("tool-params-") && part.type !== "tool-params-delta"),
      [
        { type: "tool-params-start", id: "toolu_1", name: "get_weather" },
        { type: "tool-params-end", id: "toolu_1" },
        { type: "tool-params-start", id: "toolu_2", name: "get_time" },
        { type: "tool-params-end", id: "toolu_2" }
      ]
    )
    const finish = parts.at(-1)
    assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "tool-calls")
  })

  it("takes the start block's input when a tool call streams no fragments", () => {
    const parts = partsOf([
      messageStart,
      blockStart(0, { type: "tool_use", id: "toolu_1", name: "ping", input: {} }),
      blockStop(0),
      messageDelta("tool_use"),
      messageStop
    ])
    assert.deepStrictEqual(
      parts.find((part) => part.type === "tool-call"),
      { type: "tool-call", id: "toolu_1", name: "ping", params: {} }
    )
  })

  it("keeps interleaved blocks apart by index", () => {
    const parts = partsOf([
      messageStart,
      blockStart(0, toolUse("toolu_a", "a")),
      blockStart(1, toolUse("toolu_b", "b")),
      json(0, '{"x":'),
      json(1, '{"y":'),
      json(1, "2}"),
      json(0, "1}"),
      blockStop(1),
      blockStop(0),
      messageDelta("tool_use"),
      messageStop
    ])
    assert.deepStrictEqual(
      parts.flatMap((part) => (part.type === "tool-call" ? [[part.id, part.params]] : [])),
      [
        ["toolu_b", { y: 2 }],
        ["toolu_a", { x: 1 }]
      ]
    )
  })

  it("streams thinking as reasoning and keeps its signature for the next turn", () => {
    const parts = partsOf([
      messageStart,
      blockStart(0, { type: "thinking", thinking: "", signature: "" }),
      blockDelta(0, { type: "thinking_delta", thinking: "Let me think." }),
      blockDelta(0, { type: "signature_delta", signature: "sig-abc" }),
      blockStop(0),
      messageDelta("end_turn"),
      messageStop
    ])
    assert.deepStrictEqual(parts.slice(1, 4), [
      { type: "reasoning-start", id: "reasoning-0" },
      { type: "reasoning-delta", id: "reasoning-0", delta: "Let me think." },
      { type: "reasoning-end", id: "reasoning-0", metadata: { anthropic: { signature: "sig-abc" } } }
    ])
  })

  it("skips event and block types it does not know, as Anthropic asks clients to", () => {
    const parts = partsOf([
      messageStart,
      { type: "future_event", payload: 1 },
      blockStart(0, { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} }),
      json(0, '{"query": "x"}'),
      blockStop(0),
      blockStart(1, { type: "text", text: "" }),
      blockDelta(1, { type: "citations_delta", citation: {} }),
      blockDelta(1, { type: "text_delta", text: "ok" }),
      blockStop(1),
      messageDelta("end_turn"),
      messageStop
    ])
    assert.deepStrictEqual(
      parts.map((part) => part.type),
      ["response-metadata", "text-start", "text-delta", "text-end", "finish"]
    )
  })

  it("fails with a network error when the stream ends before message_stop", () => {
    const failure = failureOf([
      messageStart,
      blockStart(0, { type: "text", text: "" }),
      blockDelta(0, { type: "text_delta", text: "Hel" })
    ])
    assert.strictEqual(failure._tag, "NetworkError")
    assert.isTrue(failure.isRetryable)
  })

  it("ignores anything after message_stop", () => {
    const parts = partsOf([
      messageStart,
      messageDelta("end_turn"),
      messageStop,
      blockDelta(7, { type: "text_delta", text: "late" })
    ])
    assert.strictEqual(parts.at(-1)?.type, "finish")
  })

  it("fails with an invalid response on malformed events, unknown blocks and tool input that is not JSON", () => {
    const cases: ReadonlyArray<ReadonlyArray<unknown>> = [
      [{ type: "message_start" }],
      [messageStart, { no: "type" }],
      [messageStart, blockDelta(3, { type: "text_delta", text: "orphan" })],
      [messageStart, blockStart(0, { type: "text" })],
      [messageStart, blockStart(0, { type: "text", text: "" }), json(0, "{}")],
      [messageStart, blockStart(0, toolUse("toolu_1", "t")), json(0, '{"a": '), blockStop(0)]
    ]
    for (const events of cases)
      assert.strictEqual(failureOf(events)._tag, "InvalidResponseError", JSON.stringify(events))
  })
})
