/**
 * What a call costs, whichever way it went: the same answer of the fake OpenAI server, with
 * cached and reasoning tokens, asked for as a completion and as a stream through effect/ai, and
 * through the relay, is the same usage and the same cost at a price with their own rates.
 */
import { assert, describe, it } from "@effect/vitest"
import { ModelCatalog, Usage } from "@polyagent/runtime"
import { Effect, Stream } from "effect"
import * as Provider from "../src/Provider.ts"
import { routes } from "../src/testing/openai-wire.ts"
import { apiKey, fake, openAi, streamAll } from "./support/openai-harness.ts"

const price = new Usage.Price({ input: 1, output: 4, cached_input: 0.1, reasoning: 8 })

describe("pricing", () => {
  it.live("a streamed and a non-streamed answer with the same usage cost the same, on every path", () =>
    Effect.gen(function* () {
      const upstream = yield* fake(routes("/v1", { apiKey }))
      const provider = yield* openAi(upstream.url)
      const model = yield* Provider.languageModel(provider, "gpt-4o")

      const completed = Usage.fromResponse((yield* model.generateText({ prompt: "Say hello" })).usage)
      const { parts } = yield* streamAll(model.streamText({ prompt: "Say hello" }))
      const finish = parts.at(-1)
      const streamed = finish?.type === "finish" ? Usage.fromResponse(finish.usage) : assert.fail("no finish part")

      const relayed: Array<Usage.Usage> = []
      const meter: ModelCatalog.Meter = { usage: (usage) => void relayed.push(usage) }
      const relay = provider.relay?.("gpt-4o") ?? assert.fail("no relay")
      yield* relay.complete({ messages: [{ role: "user", content: "Say hello" }] }, "", meter)
      yield* Stream.runDrain(relay.stream({ messages: [{ role: "user", content: "Say hello" }] }, "", meter))

      // 19 prompt tokens (4 cached), 10 completion tokens (2 reasoning).
      const expected = Usage.make(19, 10, { cached: 4, reasoning: 2 })
      for (const usage of [completed, streamed, ...relayed]) assert.deepStrictEqual(usage, expected)
      // 15 × 1 + 4 × 0.1 + 8 × 4 + 2 × 8 = 63.4 per thousand.
      const costs = [completed, streamed, ...relayed].map((usage) => Usage.cost(usage, price))
      assert.deepStrictEqual(costs, [0.0634, 0.0634, 0.0634, 0.0634])
    })
  )
})
