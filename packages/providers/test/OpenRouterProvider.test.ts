/**
 * OpenRouter is the OpenAI adapter under another name: its base URL, its attribution headers, its
 * `max_tokens`, its authenticated `/key` probe, and errors named after it.
 */
import { assert, describe, it } from "@effect/vitest"
import { CallOptions } from "@polyagent/runtime"
import { Duration, Effect, Predicate, Redacted } from "effect"
import * as OpenRouterProvider from "../src/openrouter/OpenRouterProvider.ts"
import { fake, streamAll, textOf } from "./support/openai-harness.ts"
import { answerText, routes, Scenario } from "../src/testing/openai-wire.ts"
import * as Provider from "../src/Provider.ts"

const apiKey = "sk-or-v1-4d1c0a3f9e8b7c6d5e4f3a2b1c0d9e8f"

const setup = Effect.gen(function* () {
  const upstream = yield* fake(routes("/api/v1", { apiKey }))
  const provider = yield* OpenRouterProvider.make(
    { apiKey: Redacted.make(apiKey), baseUrl: `${upstream.url}/api/v1`, timeout: Duration.seconds(5) },
    { referer: "https://polyagent.example", title: "PolyAgent Test" }
  )
  const model = yield* Provider.languageModel(provider, "meta-llama/llama-3.3-70b-instruct")
  return { upstream, provider, model }
})

const field = (value: unknown, key: string): unknown =>
  Predicate.isObject(value) && key in value ? Reflect.get(value, key) : undefined

describe("OpenRouterProvider", () => {
  it("defaults to OpenRouter's API", () => {
    assert.strictEqual(OpenRouterProvider.defaultBaseUrl, "https://openrouter.ai/api/v1")
  })

  it.live("answers with text and sends the attribution headers, the key and max_tokens", () =>
    Effect.gen(function* () {
      const { upstream, provider, model } = yield* setup
      assert.strictEqual(provider.name, "openrouter")
      const response = yield* model
        .generateText({ prompt: "hi" })
        .pipe(Effect.provideService(CallOptions.CallOptions, { maxTokens: 100 }))
      assert.strictEqual(response.text, answerText)
      const [request] = upstream.received
      assert.strictEqual(request?.path, "/api/v1/chat/completions")
      assert.strictEqual(request?.headers["http-referer"], "https://polyagent.example")
      assert.strictEqual(request?.headers["x-title"], "PolyAgent Test")
      assert.strictEqual(request?.headers.authorization, `Bearer ${apiKey}`)
      assert.strictEqual(field(request?.body, "model"), "meta-llama/llama-3.3-70b-instruct")
      assert.strictEqual(field(request?.body, "max_tokens"), 100)
      assert.isUndefined(field(request?.body, "max_completion_tokens"))
    })
  )

  it.live("streams text with usage", () =>
    Effect.gen(function* () {
      const { model } = yield* setup
      const { parts, failure } = yield* streamAll(model.streamText({ prompt: "hi" }))
      assert.isUndefined(failure)
      assert.strictEqual(textOf(parts), answerText)
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type === "finish" ? finish.usage.inputTokens.total : undefined, 19)
    })
  )

  it.live("names itself in errors", () =>
    Effect.gen(function* () {
      const { model } = yield* setup
      const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.rateLimited}` }))
      assert.strictEqual(error.module, "openrouter")
      assert.strictEqual(error.reason._tag, "RateLimitError")
      assert.property(error.reason._tag === "RateLimitError" ? error.reason.metadata : {}, "openrouter")
    })
  )

  it.live("probes with the authenticated /key endpoint", () =>
    Effect.gen(function* () {
      const { upstream, provider } = yield* setup
      const probe = yield* provider.probe
      assert.isTrue(probe.ok)
      assert.strictEqual(upstream.received[0]?.path, "/api/v1/key")
    })
  )
})
