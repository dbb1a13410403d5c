/** `mapFinishReason`: every documented `stop_reason`, a missing one, and one from the future. */
import { assert, describe, it } from "@effect/vitest"
import { mapFinishReason } from "../../src/anthropic/map-finish-reason.ts"

describe("mapFinishReason", () => {
  it("maps each stop reason Anthropic documents", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["end_turn", "stop"],
      ["stop_sequence", "stop"],
      ["max_tokens", "length"],
      ["model_context_window_exceeded", "length"],
      ["tool_use", "tool-calls"],
      ["pause_turn", "pause"],
      ["refusal", "content-filter"]
    ]
    for (const [stopReason, finishReason] of cases) assert.strictEqual(mapFinishReason(stopReason), finishReason)
  })

  it("says unknown when there is no stop reason and other for one it does not know", () => {
    assert.strictEqual(mapFinishReason(null), "unknown")
    assert.strictEqual(mapFinishReason(undefined), "unknown")
    assert.strictEqual(mapFinishReason("compaction_needed"), "other")
  })
})
