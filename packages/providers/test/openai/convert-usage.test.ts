/**
 * Chat Completions usage → effect/ai usage, and `finish_reason` → effect/ai's finish reason.
 */
import { assert, describe, it } from "@effect/vitest"
import { convertUsage } from "../../src/openai/convert-usage.ts"
import { mapFinishReason } from "../../src/openai/map-finish-reason.ts"

describe("convertUsage", () => {
  it("splits input into cached and uncached, output into reasoning and text", () => {
    assert.deepStrictEqual(
      convertUsage({
        prompt_tokens: 1200,
        completion_tokens: 300,
        total_tokens: 1500,
        prompt_tokens_details: { cached_tokens: 1024 },
        completion_tokens_details: { reasoning_tokens: 256 }
      }),
      {
        inputTokens: { total: 1200, cacheRead: 1024, cacheWrite: undefined, uncached: 176 },
        outputTokens: { total: 300, reasoning: 256, text: 44 }
      }
    )
  })

  it("leaves what the server did not report unknown, not zero", () => {
    assert.deepStrictEqual(convertUsage({ prompt_tokens: 12, completion_tokens: 5 }), {
      inputTokens: { total: 12, cacheRead: undefined, cacheWrite: undefined, uncached: 12 },
      outputTokens: { total: 5, reasoning: undefined, text: 5 }
    })
    assert.deepStrictEqual(convertUsage(undefined), {
      inputTokens: { total: undefined, cacheRead: undefined, cacheWrite: undefined, uncached: undefined },
      outputTokens: { total: undefined, reasoning: undefined, text: undefined }
    })
  })

  it("rounds non-integer counts and drops negative or non-finite ones", () => {
    const usage = convertUsage({
      prompt_tokens: 12.0000001,
      completion_tokens: -3,
      prompt_tokens_details: { cached_tokens: Number.NaN }
    })
    assert.strictEqual(usage.inputTokens.total, 12)
    assert.strictEqual(usage.outputTokens.total, 0)
    assert.isUndefined(usage.inputTokens.cacheRead)
  })
})

describe("mapFinishReason", () => {
  it("maps OpenAI's and compatible servers' reasons", () => {
    const cases: ReadonlyArray<[string | null | undefined, boolean, string]> = [
      ["stop", false, "stop"],
      ["length", false, "length"],
      ["tool_calls", true, "tool-calls"],
      ["function_call", true, "tool-calls"],
      ["content_filter", false, "content-filter"],
      ["sensitive", false, "content-filter"],
      ["network_error", false, "error"],
      ["error", false, "error"],
      [null, false, "unknown"],
      [undefined, false, "unknown"],
      ["something_new", false, "other"]
    ]
    for (const [reason, hasToolCalls, expected] of cases) {
      assert.strictEqual(mapFinishReason(reason, hasToolCalls), expected, String(reason))
    }
  })

  it("calls a stop with tool calls a tool-calls finish (a forced tool)", () => {
    assert.strictEqual(mapFinishReason("stop", true), "tool-calls")
    assert.strictEqual(mapFinishReason(null, true), "tool-calls")
  })
})
