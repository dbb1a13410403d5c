/**
 * GLM is the OpenAI adapter with Zhipu's base URL and quirks, against a fake that answers in GLM's
 * recorded shape (no `object`, usage on the finish chunk, `reasoning_content`).
 */
import { assert, describe, it } from "@effect/vitest"
import { CallOptions } from "@polyagent/runtime"
import { Duration, Effect, Predicate, Redacted } from "effect"
import * as GlmProvider from "../src/glm/GlmProvider.ts"
import { fake, streamAll, textOf, toolkit } from "./support/openai-harness.ts"
import { answerText, routes, Scenario } from "../src/testing/openai-wire.ts"
import * as Provider from "../src/Provider.ts"

const apiKey = "7f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c.AbCdEfGhIjKlMnOp"

const setup = Effect.gen(function* () {
  const upstream = yield* fake(routes("/api/paas/v4", { apiKey, flavor: "glm" }))
  const provider = yield* GlmProvider.make({
    apiKey: Redacted.make(apiKey),
    baseUrl: `${upstream.url}/api/paas/v4`,
    timeout: Duration.seconds(5)
  })
  const model = yield* Provider.languageModel(provider, "glm-4.6")
  return { upstream, provider, model }
})

const field = (value: unknown, key: string): unknown =>
  Predicate.isObject(value) && key in value ? Reflect.get(value, key) : undefined

describe("GlmProvider", () => {
  it("defaults to Zhipu's OpenAI-compatible endpoint", () => {
    assert.strictEqual(GlmProvider.defaultBaseUrl, "https://open.bigmodel.cn/api/paas/v4")
  })

  it.live("answers with text, sending max_tokens and a temperature GLM accepts", () =>
    Effect.gen(function* () {
      const { upstream, provider, model } = yield* setup
      assert.strictEqual(provider.name, "glm")
      const response = yield* model
        .generateText({ prompt: "hi" })
        .pipe(Effect.provideService(CallOptions.CallOptions, { maxTokens: 64, temperature: 1.6, user: "u1" }))
      assert.strictEqual(response.text, answerText)
      assert.strictEqual(response.usage.inputTokens.cacheRead, 4)
      const [request] = upstream.received
      assert.strictEqual(request?.path, "/api/paas/v4/chat/completions")
      assert.strictEqual(request?.headers.authorization, `Bearer ${apiKey}`)
      assert.strictEqual(field(request?.body, "max_tokens"), 64)
      assert.strictEqual(field(request?.body, "temperature"), 1)
      assert.isUndefined(field(request?.body, "user"))
    })
  )

  it.live("streams text without stream_options and reads usage from the finish chunk", () =>
    Effect.gen(function* () {
      const { upstream, model } = yield* setup
      const { parts, failure } = yield* streamAll(model.streamText({ prompt: "hi" }))
      assert.isUndefined(failure)
      assert.strictEqual(textOf(parts), answerText)
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "stop")
      assert.strictEqual(finish?.type === "finish" ? finish.usage.inputTokens.total : undefined, 19)
      assert.isUndefined(field(upstream.received[0]?.body, "stream_options"))
    })
  )

  it.live("streams reasoning_content as reasoning before the text", () =>
    Effect.gen(function* () {
      const { model } = yield* setup
      const { parts } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.reasoning}` }))
      const reasoning = parts.flatMap((part) => (part.type === "reasoning-delta" ? [part.delta] : [])).join("")
      assert.strictEqual(reasoning, "The user greets me.")
      const types = parts.map((part) => part.type)
      assert.isBelow(types.indexOf("reasoning-end"), types.indexOf("text-start"))
    })
  )

  it.live("sends a forced tool choice as auto, and reads parallel calls with a repeated finish", () =>
    Effect.gen(function* () {
      const { upstream, model } = yield* setup
      const { parts, failure } = yield* streamAll(
        model.streamText({
          prompt: `hi ${Scenario.tools}`,
          toolkit,
          toolChoice: "required",
          disableToolCallResolution: true
        })
      )
      assert.isUndefined(failure)
      assert.strictEqual(field(upstream.received[0]?.body, "tool_choice"), "auto")
      assert.deepStrictEqual(
        parts.flatMap((part) => (part.type === "tool-call" ? [part.name] : [])),
        ["get_weather", "get_time"]
      )
    })
  )

  it.live("reads business code 1113 on a 429 as an exhausted balance, not a rate limit", () =>
    Effect.gen(function* () {
      const { model } = yield* setup
      const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.glmBalance}` }))
      assert.strictEqual(error.reason._tag, "QuotaExhaustedError")
      assert.isFalse(error.isRetryable)
      assert.notInclude(JSON.stringify(error), "余额")
    })
  )
})
