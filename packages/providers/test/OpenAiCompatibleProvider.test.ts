/**
 * Any OpenAI-compatible server: the name and base URL come from configuration, the key is optional
 * (local servers need none, and then no Authorization header is sent).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import * as OpenAiCompatibleProvider from "../src/openai-compatible/OpenAiCompatibleProvider.ts"
import { fake, streamAll, textOf } from "./support/openai-harness.ts"
import { answerText, routes, Scenario } from "../src/testing/openai-wire.ts"
import * as Provider from "../src/Provider.ts"

describe("OpenAiCompatibleProvider", () => {
  it.live("talks to a keyless server under the configured name, without an Authorization header", () =>
    Effect.gen(function* () {
      const upstream = yield* fake(routes("/v1"))
      const provider = yield* OpenAiCompatibleProvider.make({
        name: "ollama",
        baseUrl: `${upstream.url}/v1/`,
        timeout: Duration.seconds(5)
      })
      assert.strictEqual(provider.name, "ollama")
      const model = yield* Provider.languageModel(provider, "llama3.2")
      const response = yield* model.generateText({ prompt: "hi" })
      assert.strictEqual(response.text, answerText)
      const { parts } = yield* streamAll(model.streamText({ prompt: "hi" }))
      assert.strictEqual(textOf(parts), answerText)
      for (const request of upstream.received) {
        assert.strictEqual(request.path, "/v1/chat/completions")
        assert.isUndefined(request.headers.authorization)
      }
      const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.serverError}` }))
      assert.strictEqual(error.module, "ollama")
    })
  )

  it.live("sends the key and extra headers when configured", () =>
    Effect.gen(function* () {
      const upstream = yield* fake(routes("/v1", { apiKey: "vllm-secret-token" }))
      const provider = yield* OpenAiCompatibleProvider.make({
        name: "vllm",
        baseUrl: `${upstream.url}/v1`,
        apiKey: Redacted.make("vllm-secret-token"),
        timeout: Duration.seconds(5),
        headers: { "X-Gateway": "lab" }
      })
      const model = yield* Provider.languageModel(provider, "Qwen/Qwen2.5-7B-Instruct")
      const response = yield* model.generateText({ prompt: "hi" })
      assert.strictEqual(response.text, answerText)
      assert.strictEqual(upstream.received[0]?.headers.authorization, "Bearer vllm-secret-token")
      assert.strictEqual(upstream.received[0]?.headers["x-gateway"], "lab")
      assert.isTrue((yield* provider.probe).ok)
    })
  )
})
