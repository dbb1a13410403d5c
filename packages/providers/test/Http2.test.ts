/**
 * `http2: true` against local HTTP/2 upstreams: h2c (prior knowledge over plain http, set through
 * the configuration) and h2 over TLS (ALPN); the relay's complete and stream, and the SDK path,
 * all over one multiplexed connection. Without `http2` the same TLS upstream is spoken to in
 * HTTP/1.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { AppConfig, ModelCatalog, ModelHealth } from "@polyagent/runtime"
import { Context, Duration, Effect, Layer, Option, Redacted, Stream } from "effect"
import * as OpenAiProvider from "../src/openai/OpenAiProvider.ts"
import * as Provider from "../src/Provider.ts"
import * as ProviderCatalog from "../src/ProviderCatalog.ts"
import { apiKey } from "./support/openai-harness.ts"
import { h2Text, h2Upstream } from "./support/h2-upstream.ts"

const ask = (text: string, stream = false) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: text }],
  ...(stream ? { stream: true } : {})
})

const utf8 = new TextDecoder()

/** The content of a completion's first choice. */
const contentOf = (bytes: Uint8Array): unknown => {
  const json: unknown = JSON.parse(utf8.decode(bytes))
  const choices = typeof json === "object" && json !== null && "choices" in json ? json.choices : undefined
  const first: unknown = Array.isArray(choices) ? choices[0] : undefined
  const message = typeof first === "object" && first !== null && "message" in first ? first.message : undefined
  return typeof message === "object" && message !== null && "content" in message ? message.content : undefined
}

/** The streamed text: the `delta.content` of every `data:` line, and whether `[DONE]` came. */
const streamed = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => {
    const text = utf8.decode(Buffer.concat([...chunks]))
    const contents = text
      .split("\n")
      .filter((line) => line.startsWith("data: {"))
      .map((line) => {
        const delta: unknown = JSON.parse(line.slice(6)).choices[0].delta
        return typeof delta === "object" && delta !== null && "content" in delta ? String(delta.content) : ""
      })
    return { text: contents.join(""), done: text.includes("data: [DONE]") }
  })

const provider = (url: string, http2: boolean) =>
  OpenAiProvider.make({
    apiKey: Redacted.make(apiKey),
    baseUrl: `${url}/v1`,
    timeout: Duration.seconds(5),
    pool: { maxConnections: 8, http2 }
  })

const relayOf = (p: Provider.Provider) => p.relay?.("gpt-4o-mini") ?? assert.fail("no relay")

describe("HTTP/2 to upstreams", () => {
  it.live("providers.<name>.http2 over plain http is h2c: complete and stream, multiplexed on one connection", () =>
    Effect.gen(function* () {
      const upstream = yield* h2Upstream(false)
      const config = yield* AppConfig.make({
        providers: {
          openai: {
            apiKey: Option.some(Redacted.make(apiKey)),
            baseUrl: Option.some(`${upstream.url}/v1`),
            http2: true
          }
        }
      })
      const services = yield* Layer.build(ProviderCatalog.layer(config).pipe(Layer.provide(ModelHealth.layerMemory)))
      const relay =
        Context.get(services, ModelCatalog.ModelCatalog).find("gpt-4o-mini")?.relay ?? assert.fail("no relay")
      assert.strictEqual(contentOf(yield* relay.complete(ask("hello"), "", ModelCatalog.noMeter)), h2Text)
      assert.deepStrictEqual(yield* streamed(relay.stream(ask("hello", true), "", ModelCatalog.noMeter)), {
        text: h2Text,
        done: true
      })
      const answers = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => ask(`question ${i}`)),
        (body) => relay.complete(body, "", ModelCatalog.noMeter),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        answers.map(contentOf),
        Array.from({ length: 10 }, () => h2Text)
      )
      assert.isAtLeast(upstream.versions.length, 12)
      assert.isTrue(upstream.versions.every((version) => version === "2.0"))
      assert.strictEqual(upstream.connections(), 1, "12 requests, 10 at once, over one HTTP/2 session")
    })
  )

  it.live("over TLS, HTTP/2 is negotiated (ALPN) for the relay and the SDK path alike", () =>
    Effect.gen(function* () {
      const upstream = yield* h2Upstream(true)
      const p = yield* provider(upstream.url, true)
      const relay = relayOf(p)
      assert.strictEqual(contentOf(yield* relay.complete(ask("hello"), "", ModelCatalog.noMeter)), h2Text)
      assert.deepStrictEqual(yield* streamed(relay.stream(ask("hello", true), "", ModelCatalog.noMeter)), {
        text: h2Text,
        done: true
      })
      const model = yield* Provider.languageModel(p, "gpt-4o-mini")
      const response = yield* model.generateText({ prompt: "hello" })
      assert.strictEqual(response.text, h2Text)
      assert.deepStrictEqual(upstream.versions, ["2.0", "2.0", "2.0"])
      assert.strictEqual(upstream.connections(), 1)
    })
  )

  it.live("without http2, the same TLS upstream is spoken to in HTTP/1.1", () =>
    Effect.gen(function* () {
      const upstream = yield* h2Upstream(true)
      const relay = relayOf(yield* provider(upstream.url, false))
      assert.strictEqual(contentOf(yield* relay.complete(ask("hello"), "", ModelCatalog.noMeter)), h2Text)
      assert.deepStrictEqual(yield* streamed(relay.stream(ask("hello", true), "", ModelCatalog.noMeter)), {
        text: h2Text,
        done: true
      })
      assert.deepStrictEqual(upstream.versions, ["1.1", "1.1"])
    })
  )
})
