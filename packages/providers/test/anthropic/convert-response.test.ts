/**
 * `convertResponse` and `toUsage`: a non-streaming answer becomes metadata, content and finish
 * parts; usage separates cache reads and writes; a body that is not a message is an invalid
 * response whose description does not quote it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { convertResponse, toUsage } from "../../src/anthropic/convert-response.ts"

const timestamp = "2026-11-25T12:00:00.000Z"

describe("convertResponse", () => {
  it("converts text, tool_use and thinking blocks in order, then the finish", () => {
    const result = convertResponse(
      {
        type: "message",
        id: "msg_1",
        role: "assistant",
        model: "claude-sonnet-5-5",
        content: [
          { type: "thinking", thinking: "hmm", signature: "sig" },
          { type: "text", text: "Checking.", citations: null },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} }
        ],
        stop_reason: "tool_use",
        stop_sequence: null,
        usage: { input_tokens: 5, output_tokens: 7, output_tokens_details: { thinking_tokens: 2 } }
      },
      timestamp
    )
    assert.deepStrictEqual(Result.getOrUndefined(result), [
      { type: "response-metadata", id: "msg_1", modelId: "claude-sonnet-5-5", timestamp },
      { type: "reasoning", text: "hmm", metadata: { anthropic: { signature: "sig" } } },
      { type: "text", text: "Checking." },
      { type: "tool-call", id: "toolu_1", name: "get_weather", params: { city: "Paris" } },
      {
        type: "finish",
        reason: "tool-calls",
        usage: {
          inputTokens: { uncached: 5, total: 5, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: 7, text: 5, reasoning: 2 }
        },
        metadata: { anthropic: { stopReason: "tool_use", stopSequence: null } }
      }
    ])
  })

  it("fails with an invalid response for a body that is not a message, without quoting it", () => {
    for (const body of ["<html>bad gateway SECRET</html>", { type: "message", id: 1 }, null]) {
      const result = convertResponse(body, timestamp)
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure._tag, "InvalidResponseError")
        assert.notInclude(result.failure.message, "SECRET")
      }
    }
  })
})

describe("toUsage", () => {
  it("counts cache reads and writes into the total input and keeps them apart", () => {
    assert.deepStrictEqual(
      toUsage({ input_tokens: 12, output_tokens: 9, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 }),
      {
        inputTokens: { uncached: 12, total: 132, cacheRead: 100, cacheWrite: 20 },
        outputTokens: { total: 9, text: undefined, reasoning: undefined }
      }
    )
  })

  it("leaves counts that were not reported unknown rather than zero", () => {
    assert.deepStrictEqual(toUsage({ input_tokens: null, output_tokens: 3 }), {
      inputTokens: { uncached: undefined, total: undefined, cacheRead: undefined, cacheWrite: undefined },
      outputTokens: { total: 3, text: undefined, reasoning: undefined }
    })
  })
})
