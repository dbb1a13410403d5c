/**
 * The OpenAI provider against a fake server that speaks Chat Completions: answers (text, streamed
 * text, one and parallel tool calls, usage), what goes upstream (body, key, request id, sampling),
 * every fault mapped to the reason the router acts on, the key never leaking into an error, and
 * interruption closing the upstream connection.
 */
import { assert, describe, it } from "@effect/vitest"
import { CallOptions, ModelCatalog, RequestId } from "@polyagent/runtime"
import { Deferred, Duration, Effect, Fiber, Stream } from "effect"
import type { AiError } from "effect/ai"
import {
  apiKey,
  fake,
  field,
  header,
  httpFaults,
  openAi,
  streamAll,
  textOf,
  toolkit
} from "./support/openai-harness.ts"
import { answerText, routes, Scenario, timeArguments, weatherArguments } from "../src/testing/openai-wire.ts"
import * as Provider from "../src/Provider.ts"

// A model on a fresh fake; the fake is closed with the test's scope.
const setup = (timeout?: Duration.Input) =>
  Effect.gen(function* () {
    const upstream = yield* fake(routes("/v1", { apiKey }))
    const provider = yield* openAi(upstream.url, timeout)
    const model = yield* Provider.languageModel(provider, "gpt-4o")
    return { upstream, provider, model }
  })

describe("OpenAiProvider", () => {
  describe("answers", () => {
    it.live("returns the text, finish reason and usage of a completion", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        const response = yield* model.generateText({
          prompt: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Say hello" }
          ]
        })
        assert.strictEqual(response.text, answerText)
        assert.strictEqual(response.finishReason, "stop")
        assert.deepStrictEqual(response.usage.inputTokens, {
          total: 19,
          cacheRead: 4,
          cacheWrite: undefined,
          uncached: 15
        })
        assert.deepStrictEqual(response.usage.outputTokens, { total: 10, reasoning: 2, text: 8 })

        const [request] = upstream.received
        assert.strictEqual(request?.path, "/v1/chat/completions")
        assert.strictEqual(header(request?.headers.authorization), `Bearer ${apiKey}`)
        assert.deepStrictEqual(request?.body, {
          model: "gpt-4o",
          stream: false,
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Say hello" }
          ]
        })
      })
    )

    it.live("streams the text as deltas, then finishes with usage asked for by stream_options", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        const { parts, failure } = yield* streamAll(model.streamText({ prompt: "Say hello" }))
        assert.isUndefined(failure)
        assert.strictEqual(textOf(parts), answerText)
        assert.isAbove(parts.filter((part) => part.type === "text-delta").length, 3)
        assert.deepStrictEqual(
          parts.map((part) => part.type).filter((type) => type !== "text-delta"),
          ["response-metadata", "text-start", "text-end", "finish"]
        )
        const metadata = parts[0]
        assert.strictEqual(metadata?.type === "response-metadata" ? metadata.modelId : undefined, "gpt-4o")
        const finish = parts.at(-1)
        assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "stop")
        assert.strictEqual(finish?.type === "finish" ? finish.usage.inputTokens.cacheRead : undefined, 4)
        assert.strictEqual(finish?.type === "finish" ? finish.usage.outputTokens.reasoning : undefined, 2)
        assert.deepStrictEqual(field(upstream.received[0]?.body, "stream_options"), { include_usage: true })
        assert.strictEqual(field(upstream.received[0]?.body, "stream"), true)
      })
    )

    it.live("returns one tool call with its arguments decoded, and sends the tools as function tools", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        const response = yield* model.generateText({
          prompt: `Weather? ${Scenario.tool}`,
          toolkit,
          disableToolCallResolution: true
        })
        assert.strictEqual(response.finishReason, "tool-calls")
        assert.deepStrictEqual(
          response.toolCalls.map((call) => [call.id, call.name, call.params]),
          [["call_weather_1", "get_weather", { location: "Paris", unit: "celsius" }]]
        )
        const body = upstream.received[0]?.body
        assert.strictEqual(field(body, "tool_choice"), "auto")
        const tools = field(body, "tools")
        assert.isTrue(Array.isArray(tools))
        const weather = Array.isArray(tools) ? tools[0] : undefined
        assert.strictEqual(field(weather, "type"), "function")
        assert.strictEqual(field(field(weather, "function"), "name"), "get_weather")
        assert.strictEqual(field(field(weather, "function"), "description"), "The current weather in a city")
        const parameters = field(field(weather, "function"), "parameters")
        assert.strictEqual(field(parameters, "type"), "object")
        assert.deepStrictEqual(field(parameters, "required"), ["location", "unit"])
      })
    )

    it.live("assembles a streamed tool call from arguments split across chunks", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { parts, failure } = yield* streamAll(
          model.streamText({ prompt: `Weather? ${Scenario.tool}`, toolkit, disableToolCallResolution: true })
        )
        assert.isUndefined(failure)
        const deltas = parts.flatMap((part) => (part.type === "tool-params-delta" ? [part.delta] : []))
        assert.strictEqual(deltas.length, 4)
        assert.strictEqual(deltas.join(""), weatherArguments)
        const calls = parts.flatMap((part) => (part.type === "tool-call" ? [[part.id, part.name, part.params]] : []))
        assert.deepStrictEqual(calls, [["call_weather_1", "get_weather", { location: "Paris", unit: "celsius" }]])
        const finish = parts.at(-1)
        assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "tool-calls")
      })
    )

    it.live("assembles parallel tool calls whose fragments interleave with each other and with text", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { parts, failure } = yield* streamAll(
          model.streamText({ prompt: `Both? ${Scenario.tools}`, toolkit, disableToolCallResolution: true })
        )
        assert.isUndefined(failure)
        assert.strictEqual(textOf(parts), "Checking both.")
        const argumentsOf = (id: string) =>
          parts.flatMap((part) => (part.type === "tool-params-delta" && part.id === id ? [part.delta] : [])).join("")
        assert.strictEqual(argumentsOf("call_weather_2"), weatherArguments)
        assert.strictEqual(argumentsOf("call_time_2"), timeArguments)
        const calls = parts.flatMap((part) => (part.type === "tool-call" ? [[part.id, part.name, part.params]] : []))
        assert.deepStrictEqual(calls, [
          ["call_weather_2", "get_weather", { location: "Paris", unit: "celsius" }],
          ["call_time_2", "get_time", { timezone: "Europe/Paris" }]
        ])
        // Each call is announced once, before its fragments, and ended before its tool-call.
        const ofWeather = parts.filter((part) => "id" in part && part.id === "call_weather_2").map((part) => part.type)
        assert.deepStrictEqual(ofWeather, [
          "tool-params-start",
          "tool-params-delta",
          "tool-params-delta",
          "tool-params-delta",
          "tool-params-end",
          "tool-call"
        ])
      })
    )

    it.live("returns parallel tool calls of a completion in order", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const response = yield* model.generateText({
          prompt: `Both? ${Scenario.tools}`,
          toolkit,
          disableToolCallResolution: true
        })
        assert.strictEqual(response.text, "Checking both.")
        assert.deepStrictEqual(
          response.toolCalls.map((call) => call.name),
          ["get_weather", "get_time"]
        )
      })
    )
  })

  describe("what goes upstream", () => {
    it.live("sends the request id as X-Request-Id, and none outside a request", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        yield* model.generateText({ prompt: "hi" }).pipe(Effect.provideService(RequestId.RequestId, "req-7f3a"))
        yield* streamAll(model.streamText({ prompt: "hi" })).pipe(
          Effect.provideService(RequestId.RequestId, "req-8b4c")
        )
        yield* model.generateText({ prompt: "hi" })
        assert.deepStrictEqual(
          upstream.received.map((request) => header(request.headers["x-request-id"])),
          ["req-7f3a", "req-8b4c", undefined]
        )
      })
    )

    it.live("sends the call's sampling settings", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        yield* model.generateText({ prompt: "hi" }).pipe(
          Effect.provideService(CallOptions.CallOptions, {
            temperature: 0.2,
            topP: 0.9,
            maxTokens: 256,
            stop: ["\n\n"],
            user: "user-42"
          })
        )
        const body = upstream.received[0]?.body
        assert.strictEqual(field(body, "temperature"), 0.2)
        assert.strictEqual(field(body, "top_p"), 0.9)
        assert.strictEqual(field(body, "max_completion_tokens"), 256)
        assert.deepStrictEqual(field(body, "stop"), ["\n\n"])
        assert.strictEqual(field(body, "user"), "user-42")
      })
    )
  })

  describe("faults", () => {
    for (const { scenario, reason, retryable, status } of httpFaults) {
      it.live(`maps ${scenario} to ${reason}, streamed or not, keeping the status and not the key`, () =>
        Effect.gen(function* () {
          const { upstream, model } = yield* setup()
          const generated = yield* Effect.flip(model.generateText({ prompt: `hi ${scenario}` }))
          const streamed = (yield* streamAll(model.streamText({ prompt: `hi ${scenario}` }))).failure
          // One request each: the SDK does not retry (the router does).
          assert.strictEqual(upstream.received.length, 2)
          for (const error of [generated, streamed]) {
            assert.strictEqual(error?.reason._tag, reason)
            assert.strictEqual(error?.isRetryable, retryable)
            assert.strictEqual(
              error !== undefined && "http" in error.reason ? error.reason.http?.response?.status : undefined,
              status
            )
            assertNoSecrets(error)
          }
        })
      )
    }

    it.live("takes Retry-After of a 429", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.rateLimited}` }))
        assert.strictEqual(error.retryAfter === undefined ? undefined : Duration.toMillis(error.retryAfter), 7000)
      })
    )

    it.live("marks a prompt too long for the model as context_too_long", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.contextTooLong}` }))
        const metadata = error.reason._tag === "InvalidRequestError" ? error.reason.metadata : {}
        assert.strictEqual(
          error.reason._tag === "InvalidRequestError" ? error.reason.constraint : undefined,
          ModelCatalog.contextTooLongConstraint
        )
        assert.deepStrictEqual(metadata["openai"], {
          status: 400,
          code: "context_length_exceeded",
          type: "invalid_request_error"
        })
      })
    )

    it.live("never shows the key a 401 echoes, nor the upstream's words, in the error", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/v1", { apiKey: "sk-the-right-one-0000000000" }))
        const provider = yield* openAi(upstream.url)
        const model = yield* Provider.languageModel(provider, "gpt-4o")
        const error = yield* Effect.flip(model.generateText({ prompt: "hi" }))
        assert.strictEqual(error.reason._tag, "AuthenticationError")
        assertNoSecrets(error)
        assert.notInclude(JSON.stringify(error), "Incorrect API key")
        assert.notInclude(error.message, "Incorrect API key")
      })
    )

    it.live("fails with a timeout when the server never answers, and closes the connection", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup("300 millis")
        const error = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.hang}` }))
        assert.strictEqual(error.reason._tag, "NetworkError")
        assert.isTrue(error.isRetryable)
        assert.match(error.reason._tag === "NetworkError" ? (error.reason.description ?? "") : "", /^Timeout/)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("aborts the request when an Effect timeout interrupts a hanging call, streamed or not", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup("30 seconds")
        const generated = yield* model
          .generateText({ prompt: `hi ${Scenario.hang}` })
          .pipe(Effect.timeoutOption("200 millis"))
        assert.strictEqual(generated._tag, "None")
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
        const streamed = yield* model
          .streamText({ prompt: `hi ${Scenario.hang}` })
          .pipe(Stream.runDrain, Effect.timeoutOption("200 millis"))
        assert.strictEqual(streamed._tag, "None")
        yield* Effect.promise(() => upstream.closedEarly(1, 1000))
      })
    )

    it.live("aborts the request when a streaming call is interrupted", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        const firstDelta = yield* Deferred.make<void>()
        const fiber = yield* model.streamText({ prompt: `hi ${Scenario.slow}` }).pipe(
          Stream.runForEach((part) =>
            part.type === "text-delta" ? Deferred.succeed(firstDelta, undefined) : Effect.void
          ),
          Effect.forkChild
        )
        yield* Deferred.await(firstDelta)
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("aborts the stream when the consumer stops early", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup()
        const taken = yield* model.streamText({ prompt: `hi ${Scenario.slow}` }).pipe(
          Stream.filter((part) => part.type === "text-delta"),
          Stream.take(2),
          Stream.runCollect
        )
        assert.strictEqual(taken.length, 2)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("fails a stream that goes silent for longer than the timeout", () =>
      Effect.gen(function* () {
        const { upstream, model } = yield* setup("50 millis")
        const { parts, failure } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.slow}` }))
        assert.strictEqual(failure?.reason._tag, "NetworkError")
        assert.match(failure?.reason._tag === "NetworkError" ? (failure.reason.description ?? "") : "", /^Timeout/)
        assert.isBelow(parts.filter((part) => part.type === "text-delta").length, 100)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("fails with a retryable network error when the connection drops mid-stream", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { parts, failure } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.drop}` }))
        assert.strictEqual(textOf(parts), "Hel")
        assert.strictEqual(failure?.reason._tag, "NetworkError")
        assert.isTrue(failure?.isRetryable)
        const generated = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.drop}` }))
        assert.strictEqual(generated.reason._tag, "NetworkError")
      })
    )

    it.live("fails with a network error when the stream ends without a finish", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { parts, failure } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.truncated}` }))
        assert.strictEqual(textOf(parts), "Hel")
        assert.strictEqual(failure?.reason._tag, "NetworkError")
        assert.isFalse(parts.some((part) => part.type === "finish"))
      })
    )

    it.live("fails with an invalid response on malformed JSON, streamed or not", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { failure } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.malformed}` }))
        assert.strictEqual(failure?.reason._tag, "InvalidResponseError")
        const generated = yield* Effect.flip(model.generateText({ prompt: `hi ${Scenario.malformed}` }))
        assert.strictEqual(generated.reason._tag, "InvalidResponseError")
      })
    )

    it.live("maps an error event inside the stream by the status in its code", () =>
      Effect.gen(function* () {
        const { model } = yield* setup()
        const { failure } = yield* streamAll(model.streamText({ prompt: `hi ${Scenario.streamError}` }))
        assert.strictEqual(failure?.reason._tag, "InternalProviderError")
        assert.strictEqual(
          failure?.reason._tag === "InternalProviderError" ? failure.reason.http?.response?.status : undefined,
          502
        )
        assert.notInclude(JSON.stringify(failure), "upstream timeout")
      })
    )

    it.live("fails with a network error when nothing listens at the base URL", () =>
      Effect.gen(function* () {
        const provider = yield* openAi("http://127.0.0.1:9")
        const model = yield* Provider.languageModel(provider, "gpt-4o")
        const error = yield* Effect.flip(model.generateText({ prompt: "hi" }))
        assert.strictEqual(error.reason._tag, "NetworkError")
        assert.isTrue(error.isRetryable)
      })
    )
  })

  describe("probe", () => {
    it.live("lists the models and reports the latency", () =>
      Effect.gen(function* () {
        const { upstream, provider } = yield* setup()
        const probe = yield* provider.probe
        assert.isTrue(probe.ok)
        assert.strictEqual(probe.status, 200)
        assert.isAtLeast(probe.latencyMs, 0)
        assert.strictEqual(upstream.received[0]?.path, "/v1/models")
        assert.strictEqual(header(upstream.received[0]?.headers.authorization), `Bearer ${apiKey}`)
      })
    )

    it.live("reports a rejected key with its status, and an unreachable server without one", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/v1", { apiKey: "sk-another-key-1111111111" }))
        const rejected = yield* (yield* openAi(upstream.url)).probe
        assert.deepStrictEqual([rejected.ok, rejected.status], [false, 401])
        const unreachable = yield* (yield* openAi("http://127.0.0.1:9")).probe
        assert.deepStrictEqual([unreachable.ok, unreachable.status], [false, undefined])
      })
    )
  })
})

// The key must not appear anywhere a client could see: message, JSON, string form.
const assertNoSecrets = (error: AiError.AiError | undefined): void => {
  assert.isDefined(error)
  for (const text of [error?.message ?? "", JSON.stringify(error), String(error), JSON.stringify(error?.reason)]) {
    assert.notInclude(text, apiKey)
    assert.notInclude(text, apiKey.slice(0, 16))
  }
}
