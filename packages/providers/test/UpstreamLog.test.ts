/**
 * UpstreamLog: one warning per failed upstream call, by the relay and by effect/ai's
 * `LanguageModel` alike, with the provider, model, status (from either adapter's error shape),
 * reason and request id; nothing for a call that succeeds or is interrupted. And every outcome
 * recorded in `ModelHealth`: latency, time to first part of streams, reason.
 */
import { assert, describe, it } from "@effect/vitest"
import { AppConfig, ModelCatalog, ModelHealth, RequestId, Usage } from "@polyagent/runtime"
import { Array as Arr, Duration, Effect, Fiber, Logger, References, Stream } from "effect"
import * as TestClock from "effect/testing/TestClock"
import { AiError, LanguageModel } from "effect/ai"
import * as UpstreamLog from "../src/UpstreamLog.ts"

const info = new ModelCatalog.ModelInfo({
  id: "gpt-4o-mini",
  provider: "openai",
  description: "test",
  offline: false,
  capabilities: new ModelCatalog.Capabilities({ tools: true, vision: false, streaming: true, context_window: 8192 }),
  cost_per_1k_tokens: new Usage.Price({ input: 0, output: 0 }),
  price_date: null
})

/** Runs `effect` and answers what it logged: level, message, then the annotations. */
const logsOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lines: Array<Record<string, unknown>> = []
    const capture = Logger.make(({ logLevel, message, fiber }) => {
      lines.push({
        level: logLevel,
        message: Arr.ensure(message)[0],
        ...fiber.getRef(References.CurrentLogAnnotations)
      })
    })
    yield* Effect.exit(effect.pipe(Effect.provide(Logger.layer([capture]))))
    return lines
  })

// As the OpenAI adapter builds them: the status in the HTTP context (and its metadata).
const rateLimited = AiError.make({
  module: "openai",
  method: "complete",
  reason: new AiError.RateLimitError({
    retryAfter: Duration.seconds(7),
    http: { response: { status: 429, headers: {} }, body: "upstream says: key sk-SECRET is over its limit" },
    metadata: { openai: { status: 429 } }
  })
})

// As the Anthropic adapter builds them: the status in its metadata only.
const overloaded = AiError.make({
  module: "AnthropicLanguageModel",
  method: "generateText",
  reason: new AiError.InternalProviderError({
    description: "Anthropic is overloaded",
    metadata: { anthropic: { status: 529, type: "overloaded_error" } }
  })
})

const refused = AiError.make({
  module: "openai",
  method: "streamText",
  reason: new AiError.NetworkError({
    reason: "TransportError",
    method: "POST",
    url: "http://127.0.0.1:1/v1/chat/completions",
    description: "Connection failed: the provider could not be reached"
  })
})

const bytes = new TextEncoder().encode("data: {}\n\n")

const slowly = <A>(ms: number, value: A) => Effect.as(Effect.sleep(Duration.millis(ms)), value)

const makeHealth = Effect.flatMap(AppConfig.make(), (config) => ModelHealth.make(ModelHealth.settingsOf(config)))

describe("UpstreamLog", () => {
  it.effect("logs a failed relay call once, with its status and reason, and never the upstream's body", () =>
    Effect.gen(function* () {
      const relay = UpstreamLog.observeRelay(
        info,
        {
          complete: () => Effect.fail(rateLimited),
          stream: () => Stream.make(bytes).pipe(Stream.concat(Stream.fail(refused)))
        },
        yield* makeHealth
      )
      const lines = yield* logsOf(relay.complete({}, "req-1", ModelCatalog.noMeter))
      assert.deepStrictEqual(lines, [
        {
          level: "Warn",
          message: "upstream call failed",
          provider: "openai",
          model: "gpt-4o-mini",
          method: "complete",
          status: 429,
          reason: "rate_limited",
          retry_after_ms: 7000,
          request_id: "req-1"
        }
      ])
      const streamed = yield* logsOf(Stream.runDrain(relay.stream({}, "req-2", ModelCatalog.noMeter)))
      assert.deepStrictEqual(streamed, [
        {
          level: "Warn",
          message: "upstream call failed",
          provider: "openai",
          model: "gpt-4o-mini",
          method: "stream",
          reason: "network",
          detail: "Connection failed: the provider could not be reached",
          request_id: "req-2"
        }
      ])
    })
  )

  it.effect(
    "logs a failed LanguageModel call with the current request id and the status of the adapter's metadata",
    () =>
      Effect.gen(function* () {
        const model = yield* LanguageModel.make(
          UpstreamLog.observeCalls(
            info,
            { generateText: () => Effect.fail(overloaded), streamText: () => Stream.fail(refused) },
            yield* makeHealth
          )
        )
        const lines = yield* logsOf(
          model.generateText({ prompt: "hi" }).pipe(Effect.provideService(RequestId.RequestId, "req-3"))
        )
        assert.lengthOf(lines, 1)
        assert.include(lines[0], { method: "generateText", status: 529, reason: "overloaded", request_id: "req-3" })
        const streamed = yield* logsOf(Stream.runDrain(model.streamText({ prompt: "hi" })))
        assert.lengthOf(streamed, 1)
        assert.include(streamed[0], { method: "streamText", reason: "network" })
        assert.notProperty(streamed[0], "status")
        assert.notProperty(streamed[0], "request_id", "no request, no request id")
      })
  )

  it.effect("logs nothing for a call that succeeds or is interrupted", () =>
    Effect.gen(function* () {
      const health = yield* makeHealth
      const relay = UpstreamLog.observeRelay(
        info,
        { complete: () => Effect.succeed(bytes), stream: () => Stream.never },
        health
      )
      assert.lengthOf(yield* logsOf(relay.complete({}, "req-4", ModelCatalog.noMeter)), 0)
      const interrupted = yield* logsOf(
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(Stream.runDrain(relay.stream({}, "req-5", ModelCatalog.noMeter)))
          yield* Effect.yieldNow
          yield* Fiber.interrupt(fiber)
        })
      )
      assert.lengthOf(interrupted, 0)
      assert.strictEqual(health.report(info.id).requests, 1, "the interrupted call is not recorded")
    })
  )

  it.effect("records every call in ModelHealth: latency, time to first part of a stream, failure reason", () =>
    Effect.gen(function* () {
      const health = yield* makeHealth
      const relay = UpstreamLog.observeRelay(
        info,
        {
          complete: () => slowly(40, bytes),
          stream: () => Stream.fromEffect(slowly(30, bytes)).pipe(Stream.concat(Stream.fromEffect(slowly(70, bytes))))
        },
        health
      )
      const streamed = yield* Effect.forkChild(Stream.runDrain(relay.stream({}, "req-6", ModelCatalog.noMeter)))
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(streamed)
      const called = yield* Effect.forkChild(relay.complete({}, "req-7", ModelCatalog.noMeter))
      yield* TestClock.adjust(Duration.millis(40))
      yield* Fiber.join(called)
      const report = health.report(info.id)
      assert.strictEqual(report.requests, 2)
      assert.deepStrictEqual(report.ttft_ms, { p50: 30, p95: 30 })
      assert.deepStrictEqual(report.latency_ms, { p50: 40, p95: 100 })

      const model = yield* LanguageModel.make(
        UpstreamLog.observeCalls(
          info,
          { generateText: () => Effect.fail(rateLimited), streamText: () => Stream.fail(refused) },
          health
        )
      )
      for (let i = 0; i < 5; i++) yield* Effect.exit(model.generateText({ prompt: "hi" }))
      assert.strictEqual(health.circuit(info.id), "open", "five 429s in a row open the breaker")
      assert.strictEqual(health.report(info.id).success_rate, 2 / 7)
    })
  )
})
