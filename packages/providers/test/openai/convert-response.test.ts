/**
 * A complete Chat Completions answer → response parts: metadata, reasoning, text, refusals, tool
 * calls with parsed arguments, finish; and the answers that cannot be read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { convertCompletion } from "../../src/openai/convert-response.ts"
import type { ChatCompletion } from "../../src/openai/wire.ts"

const completion = (message: ChatCompletion["choices"][number]["message"], finish_reason = "stop"): ChatCompletion => ({
  id: "chatcmpl-9",
  model: "gpt-4o-2024-08-06",
  created: 1741570283,
  choices: [{ message, finish_reason }],
  usage: { prompt_tokens: 10, completion_tokens: 3 }
})

const convert = (answer: ChatCompletion) => convertCompletion(answer, (n) => `fallback_${n}`)

describe("convertCompletion", () => {
  it("gives metadata, reasoning, text and finish in order", () => {
    const parts = Result.getOrThrow(convert(completion({ content: "Hello", reasoning_content: "The user greets." })))
    assert.deepStrictEqual(parts, [
      {
        type: "response-metadata",
        id: "chatcmpl-9",
        modelId: "gpt-4o-2024-08-06",
        timestamp: "2025-03-10T01:31:23.000Z"
      },
      { type: "reasoning", text: "The user greets." },
      { type: "text", text: "Hello" },
      {
        type: "finish",
        reason: "stop",
        usage: {
          inputTokens: { total: 10, cacheRead: undefined, cacheWrite: undefined, uncached: 10 },
          outputTokens: { total: 3, reasoning: undefined, text: 3 }
        }
      }
    ])
  })

  it("gives a refusal as text", () => {
    const parts = Result.getOrThrow(convert(completion({ content: null, refusal: "I can't help with that." })))
    assert.deepStrictEqual(parts[1], { type: "text", text: "I can't help with that." })
  })

  it("gives tool calls with parsed arguments, {} for empty ones, and ids for calls without", () => {
    const parts = Result.getOrThrow(
      convert(
        completion(
          {
            content: null,
            tool_calls: [
              { id: "call_1", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
              { id: null, function: { name: "list_files", arguments: "" } }
            ]
          },
          "tool_calls"
        )
      )
    )
    assert.deepStrictEqual(parts.slice(1, 3), [
      { type: "tool-call", id: "call_1", name: "get_weather", params: { location: "Paris" }, providerExecuted: false },
      { type: "tool-call", id: "fallback_1", name: "list_files", params: {}, providerExecuted: false }
    ])
    assert.deepStrictEqual(parts.at(-1)?.type === "finish" ? parts.at(-1) : undefined, {
      type: "finish",
      reason: "tool-calls",
      usage: {
        inputTokens: { total: 10, cacheRead: undefined, cacheWrite: undefined, uncached: 10 },
        outputTokens: { total: 3, reasoning: undefined, text: 3 }
      }
    })
  })

  it("fails on an answer without choices or with arguments that are not JSON", () => {
    const empty = convert({ ...completion({ content: "x" }), choices: [] })
    assert.strictEqual(Result.isFailure(empty) ? empty.failure._tag : undefined, "InvalidResponseError")
    const broken = convert(
      completion({ tool_calls: [{ id: "call_1", function: { name: "f", arguments: "{not json" } }] }, "tool_calls")
    )
    assert.strictEqual(Result.isFailure(broken) ? broken.failure._tag : undefined, "InvalidOutputError")
  })
})
