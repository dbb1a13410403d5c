/**
 * The relay's meter against the fake OpenAI and GLM servers: the usage of a completion and of a
 * stream as upstream reports it (cached and reasoning shares included), the usage event asked for
 * upstream and dropped when the client did not ask, and an estimate for a stream that breaks, is
 * stopped, or comes from a server that reports no usage. One report per call, however it ends.
 */
import { assert, describe, it } from "@effect/vitest"
import { ModelCatalog, Usage } from "@polyagent/runtime"
import { Duration, Effect, Exit, Redacted, Stream } from "effect"
import type { AiError } from "effect/ai"
import * as GlmProvider from "../../src/glm/GlmProvider.ts"
import type * as Provider from "../../src/Provider.ts"
import { routes, Scenario, usage as wireUsage } from "../../src/testing/openai-wire.ts"
import { apiKey, fake, field, openAi } from "../support/openai-harness.ts"

const relayOf = (provider: Provider.Provider, modelId: string): ModelCatalog.Relay<AiError.AiError> =>
  provider.relay?.(modelId) ?? assert.fail(`${provider.name} has no relay`)

const setup = Effect.gen(function* () {
  const upstream = yield* fake(routes("/v1", { apiKey }))
  const provider = yield* openAi(upstream.url)
  return { upstream, relay: relayOf(provider, "gpt-4o") }
})

const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: "my-alias",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: text }
  ],
  ...extra
})

/** A meter that keeps what it is told. */
const recorder = () => {
  const reports: Array<readonly [Usage.Usage, boolean]> = []
  const meter: ModelCatalog.Meter = { usage: (usage, estimated) => void reports.push([usage, estimated]) }
  return { reports, meter }
}

const reported = Usage.make(wireUsage.prompt_tokens, wireUsage.completion_tokens, {
  cached: wireUsage.prompt_tokens_details.cached_tokens,
  reasoning: wireUsage.completion_tokens_details.reasoning_tokens
})

const utf8 = new TextDecoder()
const textOf = (stream: Stream.Stream<Uint8Array, AiError.AiError>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => utf8.decode(Buffer.concat(Array.from(chunks))))

describe("relay meter", () => {
  it.live("reports a completion's usage as upstream counted it, cached and reasoning tokens included", () =>
    Effect.gen(function* () {
      const { relay } = yield* setup
      const { reports, meter } = recorder()
      yield* relay.complete(ask("Say hello"), "", meter)
      assert.deepStrictEqual(reports, [[reported, false]])
    })
  )

  it.live("reports a stream's usage from the usage event, which the client gets only when it asked", () =>
    Effect.gen(function* () {
      const { upstream, relay } = yield* setup
      const asked = recorder()
      const withUsage = yield* textOf(
        relay.stream(ask("hi", { stream_options: { include_usage: true } }), "", asked.meter)
      )
      assert.include(withUsage, '"usage":{"prompt_tokens":19')
      assert.deepStrictEqual(asked.reports, [[reported, false]])

      const silent = recorder()
      const withoutUsage = yield* textOf(relay.stream(ask("hi"), "", silent.meter))
      // Upstream was asked for usage all the same; the client's stream is the one it would get without.
      assert.deepStrictEqual(field(upstream.received.at(-1)?.body, "stream_options"), { include_usage: true })
      assert.notInclude(withoutUsage, '"usage":{')
      assert.isTrue(withoutUsage.endsWith('"finish_reason":"stop"}],"usage":null}\n\ndata: [DONE]\n\n'))
      assert.strictEqual(withoutUsage, withUsage.replace(/data: \{[^\n]*"choices":\[\],"usage":\{[^\n]*\n\n/, ""))
      assert.deepStrictEqual(silent.reports, [[reported, false]])
    })
  )

  it.live("charges a stream cut after its first chunks for what was used: an estimate", () =>
    Effect.gen(function* () {
      const { relay } = yield* setup
      const { reports, meter } = recorder()
      const exit = yield* Effect.exit(Stream.runDrain(relay.stream(ask(`hi ${Scenario.drop}`), "", meter)))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(reports.length, 1)
      const [usage, estimated] = reports[0] ?? assert.fail("no report")
      assert.isTrue(estimated)
      assert.isAbove(usage.prompt_tokens, 10) // two messages: framing, roles and text
      assert.strictEqual(usage.completion_tokens, 1) // "Hel"
    })
  )

  it.live("charges a stream the client stopped after 5 chunks for the text it got", () =>
    Effect.gen(function* () {
      const { relay } = yield* setup
      const { reports, meter } = recorder()
      const taken = yield* textOf(Stream.take(relay.stream(ask(`hi ${Scenario.slow}`), "", meter), 5))
      assert.include(taken, "data: ")
      assert.strictEqual(reports.length, 1)
      const [usage, estimated] = reports[0] ?? assert.fail("no report")
      assert.isTrue(estimated)
      assert.isAbove(usage.completion_tokens, 0)
      assert.isBelow(usage.completion_tokens, 10)
    })
  )

  it.live("estimates a stream from a server that reports no usage, and reads it from GLM's finish chunk", () =>
    Effect.gen(function* () {
      // GLM's quirks (no stream_options) against a server answering as OpenAI does: no usage unless asked.
      const plain = yield* fake(routes("/api/paas/v4", { apiKey }))
      const quiet = yield* GlmProvider.make({
        apiKey: Redacted.make(apiKey),
        baseUrl: `${plain.url}/api/paas/v4`,
        timeout: Duration.seconds(5)
      })
      const estimated = recorder()
      yield* Stream.runDrain(relayOf(quiet, "glm-4.6").stream(ask("Say hello"), "", estimated.meter))
      const [usage, isEstimate] = estimated.reports[0] ?? assert.fail("no report")
      assert.isTrue(isEstimate)
      assert.isAbove(usage.prompt_tokens, 10)
      assert.isAbove(usage.completion_tokens, 5) // "Hello! How can I help you today?"

      const glm = yield* fake(routes("/api/paas/v4", { flavor: "glm", apiKey }))
      const provider = yield* GlmProvider.make({
        apiKey: Redacted.make(apiKey),
        baseUrl: `${glm.url}/api/paas/v4`,
        timeout: Duration.seconds(5)
      })
      const read = recorder()
      const text = yield* textOf(relayOf(provider, "glm-4.6").stream(ask("Say hello"), "", read.meter))
      assert.include(text, '"usage":{') // on the finish chunk: passed on, as GLM sends it
      assert.strictEqual(read.reports.length, 1)
      assert.isFalse(read.reports[0]?.[1])
    })
  )

  it.live("reports nothing used for a call refused upstream", () =>
    Effect.gen(function* () {
      const { relay } = yield* setup
      const completed = recorder()
      yield* Effect.flip(relay.complete(ask(`hi ${Scenario.rateLimited}`), "", completed.meter))
      const streamed = recorder()
      yield* Effect.exit(Stream.runDrain(relay.stream(ask(`hi ${Scenario.rateLimited}`), "", streamed.meter)))
      assert.deepStrictEqual(completed.reports, [[Usage.zero, false]])
      assert.deepStrictEqual(streamed.reports, [[Usage.zero, false]])
    })
  )
})
