/**
 * The relay of the OpenAI family against a fake server that speaks Chat Completions: the answer's
 * bytes passed on untouched (JSON and SSE), what goes upstream (model id, key, request id, quirks,
 * provider headers, unknown fields), every fault mapped as the SDK path maps it and without the
 * key, timeouts, interruption closing the upstream connection, and the pool's connections.
 */
import { assert, describe, it } from "@effect/vitest"
import { ModelCatalog } from "@polyagent/runtime"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Redacted, Schedule, Scope, Stream } from "effect"
import type { AiError } from "effect/ai"
import * as GlmProvider from "../../src/glm/GlmProvider.ts"
import * as OpenAiCompatibleProvider from "../../src/openai-compatible/OpenAiCompatibleProvider.ts"
import * as OpenRouterProvider from "../../src/openrouter/OpenRouterProvider.ts"
import * as Provider from "../../src/Provider.ts"
import type * as FakeUpstream from "../../src/testing/FakeUpstream.ts"
import { answerText, routes, Scenario } from "../../src/testing/openai-wire.ts"
import { apiKey, fake, field, header, httpFaults, openAi } from "../support/openai-harness.ts"

const relayOf = (provider: Provider.Provider, modelId: string): ModelCatalog.Relay<AiError.AiError> =>
  provider.relay?.(modelId) ?? assert.fail(`${provider.name} has no relay`)

// The relay of `gpt-4o` on a fresh fake OpenAI; both end with the test's scope.
const setup = (timeout?: Duration.Input) =>
  Effect.gen(function* () {
    const upstream = yield* fake(routes("/v1", { apiKey }))
    const provider = yield* openAi(upstream.url, timeout)
    return { upstream, provider, relay: relayOf(provider, "gpt-4o") }
  })

const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: "my-alias",
  messages: [{ role: "user", content: text }],
  ...extra
})

const utf8 = new TextDecoder()

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(chunks)

/** Every chunk of `stream`, or the failure that ended it and the chunks before it. */
const collect = (stream: Stream.Stream<Uint8Array, AiError.AiError>) =>
  Effect.gen(function* () {
    const chunks: Array<Uint8Array> = []
    const exit = yield* Effect.exit(Stream.runForEach(stream, (chunk) => Effect.sync(() => chunks.push(chunk))))
    return { chunks, text: utf8.decode(concat(chunks)), failure: Option.getOrUndefined(Exit.findErrorOption(exit)) }
  })

/** What the fake answers `body` when asked directly, without the relay: the oracle of "untouched". */
const direct = (upstream: FakeUpstream.FakeUpstream, body: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${upstream.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(body)
    })
    return new Uint8Array(await response.arrayBuffer())
  })

const descriptionOf = (error: AiError.AiError | undefined): string =>
  error?.reason._tag === "NetworkError" ? (error.reason.description ?? "") : ""

// The key must not appear anywhere a client could see: message, JSON, string form.
const assertNoSecrets = (error: AiError.AiError | undefined): void => {
  assert.isDefined(error)
  for (const text of [error?.message ?? "", JSON.stringify(error), String(error), JSON.stringify(error?.reason)]) {
    assert.notInclude(text, apiKey)
    assert.notInclude(text, apiKey.slice(0, 16))
    assert.notInclude(text, "Incorrect API key")
  }
}

describe("relay", () => {
  describe("answers", () => {
    it.live("answers a completion with the upstream's bytes, untouched", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        const bytes = yield* relay.complete(ask("Say hello"), "", ModelCatalog.noMeter)
        const choices = field(JSON.parse(utf8.decode(bytes)), "choices")
        assert.strictEqual(
          field(field(Array.isArray(choices) ? choices[0] : undefined, "message"), "content"),
          answerText
        )
        const expected = yield* direct(upstream, {
          model: "gpt-4o",
          messages: [{ role: "user", content: "Say hello" }]
        })
        assert.deepStrictEqual(bytes, expected)
      })
    )

    it.live("streams the upstream's SSE bytes untouched, data: [DONE] included", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        const { text, failure } = yield* collect(
          relay.stream(ask("Say hello", { stream_options: { include_usage: true } }), "", ModelCatalog.noMeter)
        )
        assert.isUndefined(failure)
        const expected = yield* direct(upstream, {
          model: "gpt-4o",
          messages: [{ role: "user", content: "Say hello" }],
          stream: true,
          stream_options: { include_usage: true }
        })
        assert.strictEqual(text, utf8.decode(expected))
        assert.include(text, 'data: {"id":"chatcmpl-')
        assert.include(text, '"content":"Hello! "')
        assert.include(text, '"usage":{"prompt_tokens":19')
        assert.isTrue(text.endsWith("data: [DONE]\n\n"))
      })
    )

    it.live("passes the bytes of a stream on as they arrive, without parsing them", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup()
        const { text, failure } = yield* collect(
          relay.stream(ask(`hi ${Scenario.malformed}`), "", ModelCatalog.noMeter)
        )
        assert.isUndefined(failure)
        assert.include(text, '{"id": "chatcmpl-B9MHD", "choices": [{"delta": {"content": "lo')
      })
    )

    it.live("sends the request only when the stream runs", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        const stream = relay.stream(ask("hi"), "", ModelCatalog.noMeter)
        yield* Effect.sleep("50 millis")
        assert.strictEqual(upstream.received.length, 0)
        yield* Stream.runDrain(stream)
        assert.strictEqual(upstream.received.length, 1)
      })
    )

    it.live("reuses its keep-alive connections, and serves concurrent calls", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        for (let i = 0; i < 5; i++) {
          yield* relay.complete(ask(`question ${i}`), "", ModelCatalog.noMeter)
          yield* Stream.runDrain(relay.stream(ask(`question ${i}`), "", ModelCatalog.noMeter))
        }
        // The pool may open a second connection before the first is back in it; never one a call.
        assert.isAtMost(upstream.connections().accepted, 2)
        const answers = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => ask(`question ${i}`)),
          (body) => relay.complete(body, "", ModelCatalog.noMeter),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(answers.length, 20)
      })
    )
  })

  describe("what goes upstream", () => {
    it.live("sends the client's body with the model id, every unknown field kept, the key and the request id", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        const body = ask("hi", {
          stream: true,
          max_tokens: 256,
          response_format: { type: "json_object" },
          seed: 7,
          logprobs: true,
          vendor_extension: { keep: ["me"] }
        })
        yield* relay.complete(body, "req-7f3a", ModelCatalog.noMeter)
        const [request] = upstream.received
        assert.strictEqual(request?.method, "POST")
        assert.strictEqual(request?.path, "/v1/chat/completions")
        assert.strictEqual(header(request?.headers.authorization), `Bearer ${apiKey}`)
        assert.strictEqual(header(request?.headers["content-type"]), "application/json")
        assert.strictEqual(header(request?.headers["x-request-id"]), "req-7f3a")
        assert.deepStrictEqual(request?.body, {
          model: "gpt-4o",
          messages: [{ role: "user", content: "hi" }],
          max_completion_tokens: 256,
          response_format: { type: "json_object" },
          seed: 7,
          logprobs: true,
          vendor_extension: { keep: ["me"] }
        })
      })
    )

    it.live("sends X-Request-Id only for a request id, streamed or not", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        yield* Stream.runDrain(relay.stream(ask("hi"), "req-8b4c", ModelCatalog.noMeter))
        yield* relay.complete(ask("hi"), "", ModelCatalog.noMeter)
        yield* Stream.runDrain(relay.stream(ask("hi"), "", ModelCatalog.noMeter))
        assert.deepStrictEqual(
          upstream.received.map((request) => header(request.headers["x-request-id"])),
          ["req-8b4c", undefined, undefined]
        )
        assert.strictEqual(field(upstream.received[0]?.body, "stream"), true)
      })
    )

    it.live("applies the provider's quirks, under its base URL's path (GLM)", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/api/paas/v4", { flavor: "glm", apiKey }))
        const provider = yield* GlmProvider.make({
          apiKey: Redacted.make(apiKey),
          baseUrl: `${upstream.url}/api/paas/v4`,
          timeout: Duration.seconds(5)
        })
        const relay = relayOf(provider, "glm-4.6")
        const body = ask("hi", {
          max_completion_tokens: 300,
          temperature: 1.8,
          user: "user-42",
          stream_options: { include_usage: true },
          tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
          tool_choice: "required"
        })
        const { text, failure } = yield* collect(relay.stream(body, "", ModelCatalog.noMeter))
        assert.isUndefined(failure)
        assert.include(text, '"usage":{"prompt_tokens":19')
        assert.isTrue(text.endsWith("data: [DONE]\n\n"))
        const [request] = upstream.received
        assert.strictEqual(request?.path, "/api/paas/v4/chat/completions")
        assert.deepStrictEqual(request?.body, {
          model: "glm-4.6",
          messages: [{ role: "user", content: "hi" }],
          stream: true,
          max_tokens: 300,
          temperature: 1,
          tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
          tool_choice: "auto"
        })
      })
    )

    it.live("sends the provider's own headers (OpenRouter)", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/api/v1", { apiKey }))
        const provider = yield* OpenRouterProvider.make(
          { apiKey: Redacted.make(apiKey), baseUrl: `${upstream.url}/api/v1`, timeout: Duration.seconds(5) },
          { referer: "https://polyagent.dev" }
        )
        yield* relayOf(provider, "meta-llama/llama-3.3-70b-instruct").complete(
          ask("hi", { max_completion_tokens: 9 }),
          "",
          ModelCatalog.noMeter
        )
        const [request] = upstream.received
        assert.strictEqual(request?.path, "/api/v1/chat/completions")
        assert.strictEqual(header(request?.headers["x-title"]), "PolyAgent")
        assert.strictEqual(header(request?.headers["http-referer"]), "https://polyagent.dev")
        assert.strictEqual(header(request?.headers.authorization), `Bearer ${apiKey}`)
        assert.strictEqual(field(request?.body, "model"), "meta-llama/llama-3.3-70b-instruct")
        assert.strictEqual(field(request?.body, "max_tokens"), 9)
      })
    )

    it.live("sends no Authorization header to a server without a key", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/v1"))
        const provider = yield* OpenAiCompatibleProvider.make({
          name: "ollama",
          baseUrl: `${upstream.url}/v1`,
          timeout: Duration.seconds(5)
        })
        yield* relayOf(provider, "llama3.1:8b").complete(ask("hi"), "", ModelCatalog.noMeter)
        assert.isFalse("authorization" in (upstream.received[0]?.headers ?? {}))
        assert.strictEqual(field(upstream.received[0]?.body, "model"), "llama3.1:8b")
      })
    )
  })

  describe("faults", () => {
    for (const { scenario, reason, retryable, status } of httpFaults) {
      it.live(`maps ${scenario} to ${reason} exactly as the SDK path does, streamed or not, without the key`, () =>
        Effect.gen(function* () {
          const { upstream, provider, relay } = yield* setup()
          const completed = yield* Effect.flip(relay.complete(ask(`hi ${scenario}`), "", ModelCatalog.noMeter))
          const { chunks, failure: streamed } = yield* collect(
            relay.stream(ask(`hi ${scenario}`), "", ModelCatalog.noMeter)
          )
          assert.strictEqual(chunks.length, 0)
          const model = yield* Provider.languageModel(provider, "gpt-4o")
          const sdk = yield* Effect.flip(model.generateText({ prompt: `hi ${scenario}` }))
          // One request each: the relay does not retry (the router does).
          assert.strictEqual(upstream.received.length, 3)
          for (const error of [completed, streamed]) {
            assert.strictEqual(error?.reason._tag, reason)
            assert.strictEqual(error?.isRetryable, retryable)
            assert.strictEqual(
              error !== undefined && "http" in error.reason ? error.reason.http?.response?.status : undefined,
              status
            )
            assert.deepStrictEqual(error?.reason, sdk.reason)
            assertNoSecrets(error)
          }
        })
      )
    }

    it.live("takes Retry-After of a 429", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup()
        const error = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.rateLimited}`), "", ModelCatalog.noMeter))
        assert.strictEqual(error.retryAfter === undefined ? undefined : Duration.toMillis(error.retryAfter), 7000)
      })
    )

    it.live("marks a prompt too long for the model as context_too_long", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup()
        const error = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.contextTooLong}`), "", ModelCatalog.noMeter))
        assert.strictEqual(
          error.reason._tag === "InvalidRequestError" ? error.reason.constraint : undefined,
          ModelCatalog.contextTooLongConstraint
        )
      })
    )

    it.live("classifies a vendor's error code by the provider's quirks (GLM's empty balance)", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/api/paas/v4", { flavor: "glm" }))
        const provider = yield* GlmProvider.make({
          apiKey: Redacted.make(apiKey),
          baseUrl: `${upstream.url}/api/paas/v4`,
          timeout: Duration.seconds(5)
        })
        const error = yield* Effect.flip(
          relayOf(provider, "glm-4.6").complete(ask(`hi ${Scenario.glmBalance}`), "", ModelCatalog.noMeter)
        )
        assert.strictEqual(error.reason._tag, "QuotaExhaustedError")
        assert.isFalse(error.isRetryable)
      })
    )

    it.live("never shows the key a 401 echoes, nor the upstream's words, in the error", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/v1", { apiKey: "sk-the-right-one-0000000000" }))
        const relay = relayOf(yield* openAi(upstream.url), "gpt-4o")
        const completed = yield* Effect.flip(relay.complete(ask("hi"), "", ModelCatalog.noMeter))
        const streamed = (yield* collect(relay.stream(ask("hi"), "", ModelCatalog.noMeter))).failure
        for (const error of [completed, streamed]) {
          assert.strictEqual(error?.reason._tag, "AuthenticationError")
          assertNoSecrets(error)
        }
      })
    )

    it.live("fails with a timeout when the server never answers, and closes the connection", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup("300 millis")
        const completed = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.hang}`), "", ModelCatalog.noMeter))
        assert.strictEqual(completed.reason._tag, "NetworkError")
        assert.isTrue(completed.isRetryable)
        assert.match(descriptionOf(completed), /^Timeout: no response within 300 ms/)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
        const { failure } = yield* collect(relay.stream(ask(`hi ${Scenario.hang}`), "", ModelCatalog.noMeter))
        assert.match(descriptionOf(failure), /^Timeout/)
        yield* Effect.promise(() => upstream.closedEarly(1, 1000))
      })
    )

    it.live(
      "fails an answer that goes silent for longer than the timeout, streamed or not, and closes the connection",
      () =>
        Effect.gen(function* () {
          const { upstream, relay } = yield* setup("300 millis")
          const { text, failure } = yield* collect(relay.stream(ask(`hi ${Scenario.stall}`), "", ModelCatalog.noMeter))
          assert.strictEqual(failure?.reason._tag, "NetworkError")
          assert.isTrue(failure?.isRetryable)
          assert.match(descriptionOf(failure), /^Timeout: no chunk within 300 ms/)
          assert.include(text, '"content":"Hel"')
          yield* Effect.promise(() => upstream.closedEarly(0, 1000))
          const completed = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.stall}`), "", ModelCatalog.noMeter))
          assert.match(descriptionOf(completed), /^Timeout: no chunk within 300 ms/)
          yield* Effect.promise(() => upstream.closedEarly(1, 1000))
        })
    )

    it.live("does not time out a stream whose chunks keep coming, however long it takes", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup("500 millis")
        // 12 chunks 100 ms apart: twice the timeout in all, never the timeout between two chunks.
        const taken = yield* relay.stream(ask(`hi ${Scenario.slow}`), "", ModelCatalog.noMeter).pipe(
          Stream.map((chunk) => utf8.decode(chunk)),
          Stream.filter((text) => text.includes("word")),
          Stream.take(12),
          Stream.runCollect
        )
        assert.include(taken.join(""), "word11 ")
      })
    )

    it.live("fails with a retryable lost connection when the connection drops mid-stream", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup()
        const { text, failure } = yield* collect(relay.stream(ask(`hi ${Scenario.drop}`), "", ModelCatalog.noMeter))
        assert.include(text, '"content":"Hel"')
        assert.strictEqual(failure?.reason._tag, "NetworkError")
        assert.isTrue(failure?.isRetryable)
        assert.match(descriptionOf(failure), /^Connection lost/)
        const completed = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.drop}`), "", ModelCatalog.noMeter))
        assert.strictEqual(completed.reason._tag, "NetworkError")
        assert.isTrue(completed.isRetryable)
        assert.match(descriptionOf(completed), /^Connection failed/)
      })
    )

    it.live("fails a completion whose body is not JSON with an invalid response", () =>
      Effect.gen(function* () {
        const { relay } = yield* setup()
        const error = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.malformed}`), "", ModelCatalog.noMeter))
        assert.strictEqual(error.reason._tag, "InvalidResponseError")
        assert.isFalse(error.isRetryable)
      })
    )

    it.live("fails with a retryable network error when nothing listens at the base URL", () =>
      Effect.gen(function* () {
        const relay = relayOf(yield* openAi("http://127.0.0.1:9"), "gpt-4o")
        const completed = yield* Effect.flip(relay.complete(ask("hi"), "", ModelCatalog.noMeter))
        const streamed = (yield* collect(relay.stream(ask("hi"), "", ModelCatalog.noMeter))).failure
        for (const error of [completed, streamed]) {
          assert.strictEqual(error?.reason._tag, "NetworkError")
          assert.isTrue(error?.isRetryable)
          assert.match(descriptionOf(error), /^Connection failed/)
        }
      })
    )
  })

  describe("interruption", () => {
    it.live("aborts a hanging completion when its Effect is interrupted", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup("30 seconds")
        const result = yield* relay
          .complete(ask(`hi ${Scenario.hang}`), "", ModelCatalog.noMeter)
          .pipe(Effect.timeoutOption("200 millis"))
        assert.strictEqual(result._tag, "None")
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("aborts a stream waiting for its headers when it is interrupted", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup("30 seconds")
        const result = yield* relay
          .stream(ask(`hi ${Scenario.hang}`), "", ModelCatalog.noMeter)
          .pipe(Stream.runDrain, Effect.timeoutOption("200 millis"))
        assert.strictEqual(result._tag, "None")
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("aborts a stream interrupted after its first bytes, while it waits for more", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup("30 seconds")
        const stalled = yield* Deferred.make<void>()
        const fiber = yield* relay.stream(ask(`hi ${Scenario.stall}`), "", ModelCatalog.noMeter).pipe(
          Stream.runForEach((chunk) =>
            utf8.decode(chunk).includes('"Hel"') ? Deferred.succeed(stalled, undefined) : Effect.void
          ),
          Effect.forkChild
        )
        // Everything the upstream sends has arrived: the stream now waits for bytes that never come.
        yield* Deferred.await(stalled)
        yield* Effect.sleep("50 millis")
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )

    it.live("aborts a stream whose consumer stops early", () =>
      Effect.gen(function* () {
        const { upstream, relay } = yield* setup()
        const taken = yield* relay
          .stream(ask(`hi ${Scenario.slow}`), "", ModelCatalog.noMeter)
          .pipe(Stream.take(1), Stream.runCollect)
        assert.strictEqual(taken.length, 1)
        yield* Effect.promise(() => upstream.closedEarly(0, 1000))
      })
    )
  })

  describe("connections", () => {
    it.live("closes its pool's connections with the provider's scope", () =>
      Effect.gen(function* () {
        const upstream = yield* fake(routes("/v1", { apiKey }))
        const scope = yield* Scope.make()
        const provider = yield* openAi(upstream.url).pipe(Scope.provide(scope))
        const relay = relayOf(provider, "gpt-4o")
        yield* relay.complete(ask("hi"), "", ModelCatalog.noMeter)
        assert.strictEqual(upstream.connections().open, 1)
        yield* Scope.close(scope, Exit.void)
        const open = yield* Effect.sync(() => upstream.connections().open).pipe(
          Effect.repeat({ until: (count) => count === 0, schedule: Schedule.spaced("10 millis"), times: 100 })
        )
        assert.strictEqual(open, 0)
        const after = yield* Effect.flip(relay.complete(ask("hi"), "", ModelCatalog.noMeter))
        assert.strictEqual(after.reason._tag, "NetworkError")
      })
    )
  })
})
