/** `Config`: the default `max_tokens` per model and the SDK timeout derived from `Settings.timeout`. */
import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import * as Config from "../../src/anthropic/Config.ts"

describe("Config", () => {
  it("defaults max_tokens to the model's output limit, the longest known prefix winning", () => {
    assert.strictEqual(Config.defaultMaxTokens("claude-3-haiku-20240307"), 4096)
    assert.strictEqual(Config.defaultMaxTokens("claude-3-5-haiku-20241022"), 8192)
    assert.strictEqual(Config.defaultMaxTokens("claude-opus-4-1-20250805"), 32000)
    assert.strictEqual(Config.defaultMaxTokens("claude-opus-4-5"), 64000)
    assert.strictEqual(Config.defaultMaxTokens("claude-sonnet-5-5"), 64000)
  })

  it("falls back to a limit every Claude model accepts for an unknown model", () => {
    assert.strictEqual(Config.defaultMaxTokens("claude-next-preview"), Config.fallbackMaxTokens)
  })

  it("gives the SDK a timeout in whole milliseconds that one timer can hold", () => {
    assert.strictEqual(Config.timeoutMillis(Duration.seconds(30)), 30_000)
    assert.strictEqual(Config.timeoutMillis(Duration.millis(0.2)), 1)
    assert.strictEqual(Config.timeoutMillis(Duration.infinity), 2 ** 31 - 1)
  })
})
