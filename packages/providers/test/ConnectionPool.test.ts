/**
 * A provider's connection pool against slow local upstreams: `providers.<name>.max_connections`
 * (and a catalogue entry's) bounds the connections, requests beyond the pool wait in its queue
 * without timing out for that alone, the default pool holds more than the old 256, and the SDK
 * path goes over the same pool.
 */
import { assert, describe, it } from "@effect/vitest"
import { AppConfig, ModelCatalog, ModelHealth } from "@polyagent/runtime"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import * as ConnectionPool from "../src/ConnectionPool.ts"
import * as OpenAiProvider from "../src/openai/OpenAiProvider.ts"
import * as Provider from "../src/Provider.ts"
import * as ProviderCatalog from "../src/ProviderCatalog.ts"
import { apiKey } from "./support/openai-harness.ts"

/** A Chat Completions upstream that answers every request after `delayMs`, and counts its connections. */
interface SlowUpstream {
  readonly url: string
  /** The most TCP connections open at once, and completions answered (not the health probe). */
  readonly maxOpen: () => number
  readonly answered: () => number
}

const completion = JSON.stringify({
  id: "chatcmpl-slow",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "slow hello" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
})

const slowUpstream = (delayMs: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const sockets = new Set<Socket>()
      let maxOpen = 0
      let answered = 0
      const server: Server = createServer((req, res) => {
        req.resume()
        req.on("end", () => {
          setTimeout(() => {
            if (req.method === "POST") answered++
            res.writeHead(200, { "content-type": "application/json" }).end(completion)
          }, delayMs)
        })
      })
      server.on("connection", (socket: Socket) => {
        sockets.add(socket)
        maxOpen = Math.max(maxOpen, sockets.size)
        socket.on("close", () => sockets.delete(socket))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      const upstream: SlowUpstream = {
        url: `http://127.0.0.1:${port}`,
        maxOpen: () => maxOpen,
        answered: () => answered
      }
      return { upstream, server, sockets }
    }),
    ({ server, sockets }) =>
      Effect.promise(() => {
        for (const socket of sockets) socket.destroy()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      })
  ).pipe(Effect.map(({ upstream }) => upstream))

const ask = (text: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content: text }] })

const key = (value: string) => Option.some(Redacted.make(value))

/** `n` completions through `relay`, all at once; their answers. */
const concurrently = (relay: ModelCatalog.Relay<ModelCatalog.ModelError>, n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => ask(`question ${i}`)),
    (body) => relay.complete(body, "", ModelCatalog.noMeter),
    { concurrency: "unbounded" }
  )

/** The relay of `gpt-4o-mini` in a catalogue built from `overrides`, as the server builds it. */
const relayOf = (overrides: AppConfig.Overrides<AppConfig.AppConfigValue>, model = "gpt-4o-mini") =>
  Effect.gen(function* () {
    const config = yield* AppConfig.make(overrides)
    // Built in the test's scope: the pools live until the test ends.
    const services = yield* Layer.build(ProviderCatalog.layer(config).pipe(Layer.provide(ModelHealth.layerMemory)))
    const catalog = Context.get(services, ModelCatalog.ModelCatalog)
    return catalog.find(model)?.relay ?? assert.fail(`${model} has no relay`)
  })

describe("ConnectionPool", () => {
  it.live(
    "max_connections bounds the pool; 4x as many concurrent requests all pass, the queue does not time them out",
    () =>
      Effect.gen(function* () {
        // Each answer takes 600 ms and the timeout is 1 s: requests of the 2nd to 4th rounds would
        // time out if the wait for a connection counted.
        const upstream = yield* slowUpstream(600)
        const relay = yield* relayOf({
          server: { requestTimeout: Duration.seconds(1) },
          providers: {
            openai: { apiKey: key(apiKey), baseUrl: Option.some(`${upstream.url}/v1`), maxConnections: 4 }
          }
        })
        const started = Date.now()
        const answers = yield* concurrently(relay, 16)
        assert.strictEqual(answers.length, 16)
        assert.strictEqual(upstream.answered(), 16)
        assert.strictEqual(upstream.maxOpen(), 4, "never more connections than max_connections")
        assert.isAtLeast(Date.now() - started, 4 * 600 - 50, "four rounds of four")
      }),
    20_000
  )

  it.live("a catalogue entry's max_connections is its own pool's size", () =>
    Effect.gen(function* () {
      const upstream = yield* slowUpstream(200)
      const relay = yield* relayOf(
        {
          models: {
            catalog: {
              slow: {
                provider: "openai-compatible",
                baseUrl: `${upstream.url}/v1`,
                capabilities: { tools: true, vision: false, streaming: true, contextWindow: 8192 },
                costPer1kTokens: { input: 0, output: 0 },
                maxConnections: 2
              }
            }
          }
        },
        "slow"
      )
      yield* concurrently(relay, 6)
      assert.strictEqual(upstream.answered(), 6)
      assert.strictEqual(upstream.maxOpen(), 2)
    })
  )

  it.live(
    "the default pool is 4096 connections: 300 concurrent slow requests get 300 connections at once",
    () =>
      Effect.gen(function* () {
        assert.strictEqual(ConnectionPool.defaults.maxConnections, 4096)
        assert.isFalse(ConnectionPool.defaults.http2)
        const upstream = yield* slowUpstream(500)
        const relay = yield* relayOf({
          providers: { openai: { apiKey: key(apiKey), baseUrl: Option.some(`${upstream.url}/v1`) } }
        })
        yield* concurrently(relay, 300)
        assert.strictEqual(upstream.answered(), 300)
        // 300 at once (the old pool held 256); the catalogue's health probe may add one.
        assert.isAtLeast(upstream.maxOpen(), 300)
      }),
    20_000
  )

  it.live("the SDK path goes over the provider's pool and its limit", () =>
    Effect.gen(function* () {
      const upstream = yield* slowUpstream(200)
      const provider = yield* OpenAiProvider.make({
        apiKey: Redacted.make(apiKey),
        baseUrl: `${upstream.url}/v1`,
        timeout: Duration.seconds(5),
        pool: { maxConnections: 2, http2: false }
      })
      const model = yield* Provider.languageModel(provider, "gpt-4o-mini")
      const answers = yield* Effect.forEach(
        Array.from({ length: 6 }, (_, i) => `question ${i}`),
        (prompt) => model.generateText({ prompt }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        answers.map((answer) => answer.text),
        Array.from({ length: 6 }, () => "slow hello")
      )
      assert.strictEqual(upstream.maxOpen(), 2)
    })
  )
})
