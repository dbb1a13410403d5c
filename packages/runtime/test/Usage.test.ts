/** Usage arithmetic: cached and reasoning tokens at their own rates, and sums that keep them. */
import { assert, describe, it } from "@effect/vitest"
import { Capabilities, ModelInfo } from "../src/ModelCatalog.ts"
import * as Budgets from "../src/Budgets.ts"
import * as Usage from "../src/Usage.ts"

const info = (price: Usage.Price, contextWindow = 100_000) =>
  new ModelInfo({
    id: "m",
    provider: "p",
    description: "",
    offline: false,
    capabilities: new Capabilities({ tools: true, vision: false, streaming: true, context_window: contextWindow }),
    cost_per_1k_tokens: price,
    price_date: null
  })

describe("Usage", () => {
  it("prices cached prompt tokens and reasoning tokens at their own rates", () => {
    const usage = Usage.make(1000, 500, { cached: 600, reasoning: 200 })
    assert.strictEqual(usage.total_tokens, 1500)
    assert.deepStrictEqual(usage.prompt_tokens_details, { cached_tokens: 600 })
    assert.deepStrictEqual(usage.completion_tokens_details, { reasoning_tokens: 200 })
    const priced = new Usage.Price({ input: 2, output: 10, cached_input: 0.5, reasoning: 20 })
    // 400 × 2 + 600 × 0.5 + 300 × 10 + 200 × 20 = 8100 per thousand.
    assert.strictEqual(Usage.cost(usage, priced), 8.1)
  })

  it("prices cached and reasoning tokens at the input and output rates when the price has none", () => {
    const usage = Usage.make(1000, 500, { cached: 600, reasoning: 200 })
    const plain = new Usage.Price({ input: 2, output: 10 })
    assert.strictEqual(Usage.cost(usage, plain), Usage.cost(Usage.make(1000, 500), plain))
    assert.strictEqual(Usage.cost(usage, plain), 7)
  })

  it("keeps the shares within their totals, and sums them", () => {
    const capped = Usage.make(10, 5, { cached: 50, reasoning: 9 })
    assert.deepStrictEqual([Usage.cachedTokens(capped), Usage.reasoningTokens(capped)], [10, 5])
    const sum = Usage.add(Usage.make(10, 5, { cached: 4 }), Usage.make(20, 8, { reasoning: 3 }))
    assert.deepStrictEqual(sum, Usage.make(30, 13, { cached: 4, reasoning: 3 }))
    assert.isFalse("prompt_tokens_details" in Usage.make(3, 4))
  })
})

describe("Budgets.estimate", () => {
  it("prices the prompt and the most output the call may produce, at the dearer output rate", () => {
    const price = new Usage.Price({ input: 1, output: 2, reasoning: 3 })
    assert.strictEqual(Budgets.estimate(info(price), 1000, 500), (1000 * 1 + 500 * 3) / 1000)
    // No limit: the default output, within what the context window leaves.
    assert.strictEqual(Budgets.estimate(info(price), 1000, undefined), (1000 + Budgets.defaultOutputTokens * 3) / 1000)
    assert.strictEqual(Budgets.estimate(info(price, 1200), 1000, undefined), (1000 + 200 * 3) / 1000)
  })
})
