/**
 * The Anthropic provider against a local fake that speaks the Messages API: plain and streamed
 * answers, one and parallel streamed tool calls and a full tool round trip, usage with prompt-cache
 * counts, what goes upstream (system prompt, tools, call options, API version, request id), every
 * failure mode mapped to its reason without leaking the key, and interruption and timeouts closing
 * the upstream connection.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CallOptions, RequestId } from "@polyagent/runtime"
import { Cause, Duration, Effect, Exit, Fiber, Redacted, Schema, Stream } from "effect"
import { type AiError, Prompt, type Response, Tool, Toolkit } from "effect/ai"
import * as AnthropicProvider from "../src/anthropic/AnthropicProvider.ts"
import * as Config from "../src/anthropic/Config.ts"
import * as MapError from "../src/anthropic/map-error.ts"
import * as Wire from "../src/testing/anthropic-wire.ts"
import * as FakeUpstream from "../src/testing/FakeUpstream.ts"
import * as Provider from "../src/Provider.ts"

const apiKey = "sk-ant-api03-TEST-SECRET-do-not-leak"
const modelId = "claude-sonnet-5-5"

let fake: FakeUpstream.FakeUpstream
beforeAll(async () => {
  fake = await FakeUpstream.start(Wire.routes())
})
afterAll(() => fake.close())

const makeProvider = (options?: { readonly timeout?: Duration.Input; readonly baseUrl?: string }) =>
  AnthropicProvider.make({
    apiKey: Redacted.make(apiKey),
    baseUrl: options?.baseUrl ?? fake.url,
    timeout: Duration.fromInputUnsafe(options?.timeout ?? "5 seconds")
  })

const makeModel = (options?: { readonly timeout?: Duration.Input }) =>
  Effect.flatMap(makeProvider(options), (provider) => Provider.languageModel(provider, modelId))

// The body and headers of the request the fake received at `index`.
const upstream = (index: number) => {
  const received = fake.received[index]
  if (received === undefined) return assert.fail(`the fake received no request #${index}`)
  const body = received.body
  if (typeof body !== "object" || body === null) return assert.fail("the request had no JSON body")
  return { headers: received.headers, body: new Map(Object.entries(body)) }
}

// Waits (in real time) until the fake has received request #`index`.
const receivedRequest = (index: number): Effect.Effect<void> =>
  Effect.suspend(() =>
    fake.received.length > index ? Effect.void : Effect.andThen(Effect.sleep(10), receivedRequest(index))
  )

const closedEarly = (index: number) => Effect.promise(() => fake.closedEarly(index, 1000))

// Fails with the timeout reason and closes the upstream connection within a second.
const timesOut = <A>(call: Effect.Effect<A, AiError.AiError>) =>
  Effect.gen(function* () {
    const index = fake.received.length
    const error = yield* Effect.flip(call)
    assert.strictEqual(error.reason._tag === "NetworkError" ? error.reason.description : undefined, MapError.timedOut)
    yield* closedEarly(index)
  })

const collect = (stream: Stream.Stream<Response.AnyPart, AiError.AiError>) =>
  Effect.map(Stream.runCollect(stream), (parts) => Array.from(parts))

const GetWeather = Tool.make("get_weather", {
  description: "The weather in a city",
  parameters: Schema.Struct({ city: Schema.String, unit: Schema.String }),
  success: Schema.String
})
const GetTime = Tool.make("get_time", { parameters: Schema.Struct({ zone: Schema.String }), success: Schema.String })
const Tools = Toolkit.make(GetWeather, GetTime)
const ToolHandlers = Tools.toLayer({
  get_weather: ({ city }) => Effect.succeed(`21°C in ${city}`),
  get_time: ({ zone }) => Effect.succeed(`12:00 in ${zone}`)
})

describe("AnthropicProvider", () => {
  it.live("answers a conversation and sends the system prompt, messages and API version upstream", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const index = fake.received.length
      const response = yield* model.generateText({
        prompt: [
          { role: "system", content: "Be terse." },
          { role: "user", content: "hi" }
        ]
      })
      assert.strictEqual(response.text, Wire.answerText)
      assert.strictEqual(response.finishReason, "stop")
      const { headers, body } = upstream(index)
      assert.strictEqual(headers["anthropic-version"], Config.apiVersion)
      assert.strictEqual(headers.authorization, `Bearer ${apiKey}`)
      assert.strictEqual(body.get("model"), modelId)
      assert.strictEqual(body.get("max_tokens"), Config.defaultMaxTokens(modelId))
      assert.deepStrictEqual(body.get("system"), [{ type: "text", text: "Be terse." }])
      assert.deepStrictEqual(body.get("messages"), [{ role: "user", content: [{ type: "text", text: "hi" }] }])
      assert.isFalse(body.has("tools"))
    })
  )

  it.live("reports usage with the prompt cache's reads and writes", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const response = yield* model.generateText({ prompt: "hi" })
      const { input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens } = Wire.usage
      assert.deepStrictEqual(response.usage.inputTokens, {
        uncached: input_tokens,
        total: input_tokens + cache_read_input_tokens + cache_creation_input_tokens,
        cacheRead: cache_read_input_tokens,
        cacheWrite: cache_creation_input_tokens
      })
      assert.strictEqual(response.usage.outputTokens.total, output_tokens)
    })
  )

  it.live("streams the answer as text deltas, then a finish with the same usage as a plain call", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const generated = yield* model.generateText({ prompt: "hi" })
      const index = fake.received.length
      const parts = yield* collect(model.streamText({ prompt: "hi" }))
      assert.strictEqual(upstream(index).body.get("stream"), true)
      const deltas = parts.flatMap((part) => (part.type === "text-delta" ? [part.delta] : []))
      assert.isAtLeast(deltas.length, 2)
      assert.strictEqual(deltas.join(""), Wire.answerText)
      assert.deepStrictEqual(
        parts.map((part) => part.type).filter((type) => type !== "text-delta"),
        ["response-metadata", "text-start", "text-end", "finish"]
      )
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "stop")
      assert.deepStrictEqual(finish?.type === "finish" ? finish.usage : undefined, generated.usage)
    })
  )

  it.live("streams one tool call, its input assembled from fragments, and offers the tools upstream", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const index = fake.received.length
      const parts = yield* collect(
        model.streamText({ prompt: `weather? ${Wire.scenarios.tool}`, toolkit: Tools, disableToolCallResolution: true })
      )
      const calls = parts.filter((part) => part.type === "tool-call")
      assert.deepStrictEqual(
        calls.map((call) => [call.id, call.name, call.params]),
        [["toolu_01weather", "get_weather", Wire.weatherInput]]
      )
      const fragments = parts.flatMap((part) => (part.type === "tool-params-delta" ? [part.delta] : []))
      assert.isAtLeast(fragments.length, 2)
      assert.strictEqual(fragments.join(""), JSON.stringify(Wire.weatherInput))
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "tool-calls")
      const { body } = upstream(index)
      assert.deepStrictEqual(body.get("tool_choice"), { type: "auto" })
      assert.deepStrictEqual(Array.isArray(body.get("tools")) ? body.get("tools") : undefined, [
        {
          name: "get_weather",
          description: "The weather in a city",
          input_schema: { ...Tool.getJsonSchema(GetWeather), type: "object" }
        },
        { name: "get_time", input_schema: { ...Tool.getJsonSchema(GetTime), type: "object" } }
      ])
    })
  )

  it.live("streams parallel tool calls after some text, each with its own input", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const parts = yield* collect(
        model.streamText({
          prompt: `both? ${Wire.scenarios.parallelTools}`,
          toolkit: Tools,
          disableToolCallResolution: true
        })
      )
      assert.strictEqual(
        parts.flatMap((part) => (part.type === "text-delta" ? [part.delta] : [])).join(""),
        "Let me check both."
      )
      assert.deepStrictEqual(
        parts.flatMap((part) => (part.type === "tool-call" ? [[part.name, part.params]] : [])),
        [
          ["get_weather", Wire.weatherInput],
          ["get_time", Wire.timeInput]
        ]
      )
      for (const id of ["toolu_01weather", "toolu_02time"]) {
        const fragments = parts.flatMap((part) =>
          part.type === "tool-params-delta" && part.id === id ? [part.delta] : []
        )
        const call = parts.find((part) => part.type === "tool-call" && part.id === id)
        assert.strictEqual(fragments.join(""), JSON.stringify(call?.type === "tool-call" ? call.params : undefined))
      }
    })
  )

  it.live("runs a tool round trip: the calls are resolved, and their results go back as tool_result blocks", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const toolkit = yield* Tools
      const prompt = Prompt.make(`both? ${Wire.scenarios.parallelTools}`)
      const first = yield* model.generateText({ prompt, toolkit })
      assert.deepStrictEqual(
        first.toolResults.map((result) => result.result),
        ["21°C in Paris", "12:00 in Europe/Paris"]
      )
      const index = fake.received.length
      const second = yield* model.generateText({
        prompt: Prompt.concat(prompt, Prompt.fromResponseParts(first.content)),
        toolkit
      })
      assert.strictEqual(second.text, Wire.answerText)
      const messages = upstream(index).body.get("messages")
      assert.deepStrictEqual(Array.isArray(messages) ? messages.slice(1) : undefined, [
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me check both." },
            { type: "tool_use", id: "toolu_01weather", name: "get_weather", input: Wire.weatherInput },
            { type: "tool_use", id: "toolu_02time", name: "get_time", input: Wire.timeInput }
          ]
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_01weather", content: "21°C in Paris" },
            { type: "tool_result", tool_use_id: "toolu_02time", content: "12:00 in Europe/Paris" }
          ]
        }
      ])
    }).pipe(Effect.provide(ToolHandlers))
  )

  it.live("sends the call's token limit, stop sequences and user id, but no sampling settings", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const index = fake.received.length
      yield* model.generateText({ prompt: "hi" }).pipe(
        Effect.provideService(CallOptions.CallOptions, {
          maxTokens: 256,
          stop: ["END"],
          user: "user-42",
          temperature: 0.2,
          topP: 0.9
        })
      )
      const { body } = upstream(index)
      assert.strictEqual(body.get("max_tokens"), 256)
      assert.deepStrictEqual(body.get("stop_sequences"), ["END"])
      assert.deepStrictEqual(body.get("metadata"), { user_id: "user-42" })
      assert.isFalse(body.has("temperature"))
      assert.isFalse(body.has("top_p"))
    })
  )

  it.live("sends the request id upstream as X-Request-Id, and no such header outside a request", () =>
    Effect.gen(function* () {
      const model = yield* makeModel()
      const plain = fake.received.length
      yield* model.generateText({ prompt: "hi" }).pipe(Effect.provideService(RequestId.RequestId, "req-plain-1"))
      const streamed = fake.received.length
      yield* collect(model.streamText({ prompt: "hi" })).pipe(
        Effect.provideService(RequestId.RequestId, "req-stream-2")
      )
      const none = fake.received.length
      yield* model.generateText({ prompt: "hi" })
      assert.strictEqual(upstream(plain).headers["x-request-id"], "req-plain-1")
      assert.strictEqual(upstream(streamed).headers["x-request-id"], "req-stream-2")
      assert.isUndefined(upstream(none).headers["x-request-id"])
    })
  )

  describe("failures", () => {
    const cases: ReadonlyArray<readonly [fault: string, reason: AiError.AiErrorReason["_tag"]]> = [
      [Wire.faults.unauthorized, "AuthenticationError"],
      [Wire.faults.rateLimited, "RateLimitError"],
      [Wire.faults.serverError, "InternalProviderError"],
      [Wire.faults.overloaded, "InternalProviderError"],
      [Wire.faults.badRequest, "InvalidRequestError"],
      [Wire.faults.contextTooLong, "InvalidRequestError"],
      [Wire.faults.drop, "NetworkError"],
      [Wire.faults.malformed, "InvalidResponseError"],
      [Wire.faults.errorEvent, "InternalProviderError"]
    ]

    it.live("maps each fault to its reason, plain and streamed", () =>
      Effect.gen(function* () {
        const model = yield* makeModel()
        for (const [fault, reason] of cases) {
          const plain = yield* Effect.flip(model.generateText({ prompt: `hi ${fault}` }))
          assert.strictEqual(plain.reason._tag, reason, `generateText ${fault}`)
          const streamed = yield* Effect.flip(collect(model.streamText({ prompt: `hi ${fault}` })))
          assert.strictEqual(streamed.reason._tag, reason, `streamText ${fault}`)
        }
      })
    )

    it.live("tells when to retry after a 429, and marks a prompt too long for the context window", () =>
      Effect.gen(function* () {
        const model = yield* makeModel()
        const limited = yield* Effect.flip(model.generateText({ prompt: `hi ${Wire.faults.rateLimited}` }))
        assert.strictEqual(limited.retryAfter === undefined ? undefined : Duration.toMillis(limited.retryAfter), 7000)
        assert.isTrue(limited.isRetryable)
        const tooLong = yield* Effect.flip(model.generateText({ prompt: `hi ${Wire.faults.contextTooLong}` }))
        assert.strictEqual(
          tooLong.reason._tag === "InvalidRequestError" ? tooLong.reason.constraint : undefined,
          MapError.contextTooLong
        )
      })
    )

    it.live("never lets the API key or the upstream error text reach the error", () =>
      Effect.gen(function* () {
        const model = yield* makeModel()
        for (const [fault] of cases) {
          for (const error of [
            yield* Effect.flip(model.generateText({ prompt: `hi ${fault}` })),
            yield* Effect.flip(collect(model.streamText({ prompt: `hi ${fault}` })))
          ]) {
            for (const text of [error.message, JSON.stringify(error), String(error), Cause.pretty(Cause.fail(error))]) {
              assert.notInclude(text, apiKey, fault)
              assert.notInclude(text, "invalid x-api-key", fault)
              assert.notInclude(text, "prompt is too long", fault)
            }
          }
        }
      })
    )

    it.live("fails with a network error when nothing listens at the base URL", () =>
      Effect.gen(function* () {
        const provider = yield* makeProvider({ baseUrl: "http://127.0.0.1:9" })
        const model = yield* Provider.languageModel(provider, modelId)
        const error = yield* Effect.flip(model.generateText({ prompt: "hi" }))
        assert.strictEqual(error.reason._tag, "NetworkError")
        assert.isTrue(error.isRetryable)
      })
    )
  })

  describe("interruption and timeouts", () => {
    it.live("interrupting a streamed answer closes the upstream connection within a second", () =>
      Effect.gen(function* () {
        const model = yield* makeModel()
        const index = fake.received.length
        const fiber = yield* model
          .streamText({ prompt: `hi ${Wire.scenarios.slow}` })
          .pipe(Stream.runDrain, Effect.forkChild)
        yield* receivedRequest(index)
        yield* Effect.sleep(100)
        yield* Fiber.interrupt(fiber)
        yield* closedEarly(index)
      })
    )

    it.live("a caller's timeout on a hung request aborts it, plain and streamed", () =>
      Effect.gen(function* () {
        const model = yield* makeModel()
        const plain = fake.received.length
        const plainExit = yield* Effect.exit(
          model.generateText({ prompt: `hi ${Wire.faults.hang}` }).pipe(Effect.timeout("300 millis"))
        )
        assert.isTrue(Exit.isFailure(plainExit))
        yield* closedEarly(plain)
        const streamed = fake.received.length
        const streamedExit = yield* Effect.exit(
          collect(model.streamText({ prompt: `hi ${Wire.faults.stall}` })).pipe(Effect.timeout("300 millis"))
        )
        assert.isTrue(Exit.isFailure(streamedExit))
        yield* closedEarly(streamed)
      })
    )

    it.live("the provider's own timeout fails a hung or stalled request as a timeout and aborts it", () =>
      Effect.gen(function* () {
        const model = yield* makeModel({ timeout: "300 millis" })
        yield* timesOut(model.generateText({ prompt: `hi ${Wire.faults.hang}` }))
        yield* timesOut(collect(model.streamText({ prompt: `hi ${Wire.faults.hang}` })))
        yield* timesOut(collect(model.streamText({ prompt: `hi ${Wire.faults.stall}` })))
      })
    )
  })

  describe("probe", () => {
    it.live("lists models with the key and reports the latency", () =>
      Effect.gen(function* () {
        const provider = yield* makeProvider()
        const index = fake.received.length
        const probe = yield* provider.probe
        assert.isTrue(probe.ok)
        assert.strictEqual(probe.status, 200)
        assert.isAtLeast(probe.latencyMs, 0)
        const received = fake.received[index]
        assert.strictEqual(received?.method, "GET")
        assert.strictEqual(received?.path, "/v1/models")
        assert.strictEqual(received?.headers.authorization, `Bearer ${apiKey}`)
      })
    )

    it.live("reports a failure, with the status when there was an answer, instead of failing", () =>
      Effect.gen(function* () {
        const noRoute = yield* Effect.promise(() => FakeUpstream.start({}))
        const missing = yield* (yield* makeProvider({ baseUrl: noRoute.url })).probe
        yield* Effect.promise(() => noRoute.close())
        assert.deepStrictEqual([missing.ok, missing.status], [false, 404])
        const unreachable = yield* (yield* makeProvider({ baseUrl: "http://127.0.0.1:9" })).probe
        assert.deepStrictEqual([unreachable.ok, unreachable.status], [false, undefined])
      })
    )
  })
})
